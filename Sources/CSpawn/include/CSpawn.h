#ifndef KNOB_CSPAWN_H
#define KNOB_CSPAWN_H

/// posix_spawn file actions that glibc declares only under _GNU_SOURCE. `actions` is a
/// `posix_spawn_file_actions_t *`; the header stays free of system includes so that its module
/// does not redefine system types.
int knob_spawn_addchdir(void *actions, const char *path);
int knob_spawn_addclosefrom(void *actions, int from);

#endif
