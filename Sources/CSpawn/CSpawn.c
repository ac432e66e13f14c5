#define _GNU_SOURCE 1
#include <errno.h>
#include <spawn.h>
#include <sys/epoll.h>
#include <sys/syscall.h>
#include <unistd.h>
#include "CSpawn.h"

int knob_spawn_addchdir(void *actions, const char *path) {
    return posix_spawn_file_actions_addchdir_np((posix_spawn_file_actions_t *)actions, path);
}

int knob_spawn_addclosefrom(void *actions, int from) {
    return posix_spawn_file_actions_addclosefrom_np((posix_spawn_file_actions_t *)actions, from);
}

int knob_pidfd_open(int pid) {
#ifdef SYS_pidfd_open
    return (int)syscall(SYS_pidfd_open, pid, 0);
#else
    errno = ENOSYS;
    return -1;
#endif
}

int knob_epoll_create(void) { return epoll_create1(EPOLL_CLOEXEC); }

int knob_epoll_add(int epoll, int fd) {
    struct epoll_event event = {.events = EPOLLIN, .data.fd = fd};
    return epoll_ctl(epoll, EPOLL_CTL_ADD, fd, &event);
}

int knob_epoll_take(int epoll, int *fds, int count) {
    struct epoll_event events[64];
    int ready = epoll_wait(epoll, events, count < 64 ? count : 64, -1);
    for (int i = 0; i < ready; i++) {
        fds[i] = events[i].data.fd;
        epoll_ctl(epoll, EPOLL_CTL_DEL, fds[i], NULL);
    }
    return ready;
}
