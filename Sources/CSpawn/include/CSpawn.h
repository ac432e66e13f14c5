#ifndef KNOB_CSPAWN_H
#define KNOB_CSPAWN_H

/// posix_spawn file actions that glibc declares only under _GNU_SOURCE. `actions` is a
/// `posix_spawn_file_actions_t *`; the header stays free of system includes so that its module
/// does not redefine system types.
int knob_spawn_addchdir(void *actions, const char *path);
int knob_spawn_addclosefrom(void *actions, int from);

/// pidfd_open(2): a descriptor that becomes readable when process `pid` exits (whether or not it
/// is a child of the caller). -1 with errno set when it fails (ESRCH: no such process; ENOSYS:
/// a kernel older than 5.3).
int knob_pidfd_open(int pid);

#endif
