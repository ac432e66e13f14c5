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

/// An epoll set (close-on-exec) that descriptors are added to for reading; -1 with errno set when it fails.
int knob_epoll_create(void);
/// Adds `fd` to the set, to report when it is readable; 0, or -1 with errno set.
int knob_epoll_add(int epoll, int fd);
/// Waits for descriptors of the set to be readable and puts up to `count` of them in `fds`, removed from the set;
/// how many it put, or -1 with errno set (EINTR).
int knob_epoll_take(int epoll, int *fds, int count);

#endif
