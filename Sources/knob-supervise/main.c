// knob-supervise --status FILE -- COMMAND [ARG...]
// knob-supervise --serve (below)
//
// The small form of `knob __supervise` (Sources/Knob/Runner/Supervisor.swift), with exactly its
// protocol: runs COMMAND in the caller's process group (stdout, stderr and working directory
// inherited, stdin from /dev/null, descriptors above 2 closed, signal mask and dispositions
// reset), looking it up on PATH as posix_spawnp does, waits for it, and writes how it ended to FILE
// as JSON -- {"exitCode":3}, {"signal":9} or {"startError":"..."} -- atomically (FILE.tmp with mode
// 0600, then rename). It ignores SIGTERM, SIGINT and SIGHUP itself, so that stopping the group
// leaves it to record the end. Before starting COMMAND it puts back the user's umask kept in
// KNOB_USER_UMASK.
//
// The status file is byte for byte what the Swift supervisor writes (Foundation's
// JSONSerialization: no spaces, "/" escaped as "\/"; glibc's strerror texts), so that either can
// read the other's after an upgrade.
//
// It is built without the C library (Package.swift): a supervisor starts with every trial, and the C
// library's own start (finding the processor's features, which a virtual machine answers slowly)
// cost three times what the rest of its start does. Everything here is a Linux system call.
#include <stddef.h>

// ---- system calls (x86-64 and arm64 Linux)

#if defined(__x86_64__)
enum {
    SYS_read = 0, SYS_write = 1, SYS_close = 3, SYS_mmap = 9, SYS_rt_sigaction = 13, SYS_rt_sigprocmask = 14,
    SYS_dup2 = 33, SYS_fork = 57, SYS_execve = 59, SYS_wait4 = 61, SYS_fcntl = 72, SYS_rename = 82, SYS_unlink = 87,
    SYS_umask = 95, SYS_exit_group = 231, SYS_openat = 257, SYS_pipe2 = 293, SYS_prlimit64 = 302, SYS_close_range = 436,
    SYS_munmap = 11, SYS_ppoll = 271, SYS_signalfd4 = 289, SYS_setpgid = 109, SYS_chdir = 80,
};

static long syscall6(long n, long a, long b, long c, long d, long e, long f) {
    long result;
    register long r10 __asm__("r10") = d;
    register long r8 __asm__("r8") = e;
    register long r9 __asm__("r9") = f;
    __asm__ volatile("syscall" : "=a"(result) : "a"(n), "D"(a), "S"(b), "d"(c), "r"(r10), "r"(r8), "r"(r9) : "rcx", "r11", "memory");
    return result;
}

// The entry point: the kernel leaves argc, argv and the environment on the stack.
__asm__(".text\n.global _start\n_start:\n xor %rbp, %rbp\n mov %rsp, %rdi\n and $-16, %rsp\n call knob_supervise_start\n hlt\n");
#elif defined(__aarch64__)
enum {
    SYS_read = 63, SYS_write = 64, SYS_close = 57, SYS_mmap = 222, SYS_rt_sigaction = 134, SYS_rt_sigprocmask = 135,
    SYS_dup3 = 24, SYS_clone = 220, SYS_execve = 221, SYS_wait4 = 260, SYS_fcntl = 25, SYS_renameat = 38,
    SYS_unlinkat = 35, SYS_umask = 166, SYS_exit_group = 94, SYS_openat = 56, SYS_pipe2 = 59, SYS_prlimit64 = 261,
    SYS_close_range = 436, SYS_munmap = 215, SYS_ppoll = 73, SYS_signalfd4 = 74, SYS_setpgid = 154, SYS_chdir = 49,
};

static long syscall6(long n, long a, long b, long c, long d, long e, long f) {
    register long x8 __asm__("x8") = n;
    register long x0 __asm__("x0") = a;
    register long x1 __asm__("x1") = b;
    register long x2 __asm__("x2") = c;
    register long x3 __asm__("x3") = d;
    register long x4 __asm__("x4") = e;
    register long x5 __asm__("x5") = f;
    __asm__ volatile("svc 0" : "+r"(x0) : "r"(x8), "r"(x1), "r"(x2), "r"(x3), "r"(x4), "r"(x5) : "memory");
    return x0;
}

__asm__(".text\n.global _start\n_start:\n mov x29, #0\n mov x0, sp\n and sp, x0, #-16\n bl knob_supervise_start\n brk #0\n");
#else
#error "knob-supervise: unsupported architecture"
#endif

#define syscall1(n, a) syscall6(n, (long)(a), 0, 0, 0, 0, 0)
#define syscall2(n, a, b) syscall6(n, (long)(a), (long)(b), 0, 0, 0, 0)
#define syscall3(n, a, b, c) syscall6(n, (long)(a), (long)(b), (long)(c), 0, 0, 0)
#define syscall4(n, a, b, c, d) syscall6(n, (long)(a), (long)(b), (long)(c), (long)(d), 0, 0)

enum {
    AT_FDCWD = -100, O_RDONLY = 0, O_WRONLY = 1, O_CREAT = 0100, O_TRUNC = 01000, O_CLOEXEC = 02000000,
    F_SETFD = 2, FD_CLOEXEC = 1, CLOSE_RANGE_CLOEXEC = 4, RLIMIT_NOFILE = 7,
    SIG_SETMASK = 2, SIGHUP = 1, SIGINT = 2, SIGQUIT = 3, SIGUSR1 = 10, SIGUSR2 = 12, SIGPIPE = 13, SIGALRM = 14,
    SIGTERM = 15, SIGCHLD = 17,
    EINTR = 4, EAGAIN = 11, EINVAL = 22, ENAMETOOLONG = 36, ENOENT = 2, ENOTDIR = 20, EACCES = 13, ESTALE = 116, ENODEV = 19, ETIMEDOUT = 110,
    PROT_READ = 1, PROT_WRITE = 2, MAP_PRIVATE = 2, MAP_ANONYMOUS = 0x20,
    O_NONBLOCK = 04000, O_APPEND = 02000, WNOHANG = 1, POLLIN = 1, SIG_BLOCK = 0,
};

/// The kernel's sigaction: handler, flags, restorer, mask (one 64-bit word).
struct kernel_sigaction {
    unsigned long handler, flags, restorer, mask;
};

static void set_disposition(int signal, unsigned long handler) {
    struct kernel_sigaction action = {handler, 0, 0, 0};
    syscall4(SYS_rt_sigaction, signal, &action, 0, 8);
}

static _Noreturn void exit_group(int code) {
    for (;;) syscall1(SYS_exit_group, code);
}

static int open_file(const char *path, int flags, int mode) { return (int)syscall4(SYS_openat, AT_FDCWD, path, flags, mode); }

static int move_descriptor(int from, int to) {
#if defined(__x86_64__)
    return (int)syscall2(SYS_dup2, from, to);
#else
    return (int)syscall3(SYS_dup3, from, to, 0);
#endif
}

static int rename_file(const char *from, const char *to) {
#if defined(__x86_64__)
    return (int)syscall2(SYS_rename, from, to);
#else
    return (int)syscall4(SYS_renameat, AT_FDCWD, from, AT_FDCWD, to);
#endif
}

static int unlink_file(const char *path) {
#if defined(__x86_64__)
    return (int)syscall1(SYS_unlink, path);
#else
    return (int)syscall3(SYS_unlinkat, AT_FDCWD, path, 0);
#endif
}

static long fork_process(void) {
#if defined(__x86_64__)
    return syscall6(SYS_fork, 0, 0, 0, 0, 0, 0);
#else
    return syscall6(SYS_clone, SIGCHLD, 0, 0, 0, 0, 0);
#endif
}

// The compiler may call these for copies and zeroing.
void *memcpy(void *to, const void *from, size_t count) {
    unsigned char *t = to;
    const unsigned char *f = from;
    while (count--) *t++ = *f++;
    return to;
}

void *memset(void *to, int value, size_t count) {
    unsigned char *t = to;
    while (count--) *t++ = (unsigned char)value;
    return to;
}

static size_t length(const char *text) {
    size_t count = 0;
    while (text[count]) count++;
    return count;
}

static int same(const char *a, const char *b) {
    while (*a && *a == *b) a++, b++;
    return *a == *b;
}

static int has_slash(const char *text) {
    for (; *text; text++) if (*text == '/') return 1;
    return 0;
}

/// The value of `name` in the environment `envp`, or 0.
static const char *environment_value(char **envp, const char *name) {
    size_t count = length(name);
    for (; *envp; envp++) {
        size_t i = 0;
        while (i < count && (*envp)[i] == name[i]) i++;
        if (i == count && (*envp)[i] == '=') return *envp + count + 1;
    }
    return 0;
}

// ---- a growing byte buffer in pages of its own

struct buffer {
    char *bytes;
    size_t count, capacity;
};

static void append(struct buffer *buffer, const char *bytes, size_t count) {
    if (buffer->count + count > buffer->capacity) {
        size_t capacity = ((buffer->capacity + count) * 2 + 4095) & ~(size_t)4095;
        long memory = syscall6(SYS_mmap, 0, (long)capacity, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        if (memory < 0 && memory > -4096) exit_group(1);
        memcpy((char *)memory, buffer->bytes, buffer->count);
        if (buffer->capacity) syscall2(SYS_munmap, buffer->bytes, buffer->capacity);
        buffer->bytes = (char *)memory;
        buffer->capacity = capacity;
    }
    memcpy(buffer->bytes + buffer->count, bytes, count);
    buffer->count += count;
}

static void append_text(struct buffer *buffer, const char *text) { append(buffer, text, length(text)); }

/// Gives the buffer's pages back (the serving supervisor writes many statuses).
static void release(struct buffer *buffer) {
    if (buffer->capacity) syscall2(SYS_munmap, buffer->bytes, buffer->capacity);
    *buffer = (struct buffer){0};
}

static void append_number(struct buffer *buffer, long value) {
    char digits[24];
    int at = sizeof digits;
    unsigned long magnitude = value < 0 ? -(unsigned long)value : (unsigned long)value;
    do digits[--at] = (char)('0' + magnitude % 10); while ((magnitude /= 10) && at > 1);
    if (value < 0) digits[--at] = '-';
    append(buffer, digits + at, sizeof digits - at);
}

/// A JSON string as swift-corelibs-foundation's JSONSerialization writes it: `"`, `\` and `/`
/// escaped, \b \f \n \r \t by name, other control characters as \u00xx (lowercase hex), everything
/// else (UTF-8 included) as it is.
static void append_json_string(struct buffer *buffer, const char *text) {
    static const char hex[] = "0123456789abcdef";
    append_text(buffer, "\"");
    for (const unsigned char *p = (const unsigned char *)text; *p; p++) {
        switch (*p) {
        case '"': append_text(buffer, "\\\""); break;
        case '\\': append_text(buffer, "\\\\"); break;
        case '/': append_text(buffer, "\\/"); break;
        case '\b': append_text(buffer, "\\b"); break;
        case '\f': append_text(buffer, "\\f"); break;
        case '\n': append_text(buffer, "\\n"); break;
        case '\r': append_text(buffer, "\\r"); break;
        case '\t': append_text(buffer, "\\t"); break;
        default:
            if (*p < 0x20) {
                char escaped[6] = {'\\', 'u', '0', '0', hex[*p >> 4], hex[*p & 15]};
                append(buffer, escaped, 6);
            } else {
                append(buffer, (const char *)p, 1);
            }
        }
    }
    append_text(buffer, "\"");
}

/// glibc's strerror text for what starting a program can fail with.
static const char *error_text(int code) {
    switch (code) {
    case 1: return "Operation not permitted";
    case 2: return "No such file or directory";
    case 5: return "Input/output error";
    case 7: return "Argument list too long";
    case 8: return "Exec format error";
    case 11: return "Resource temporarily unavailable";
    case 12: return "Cannot allocate memory";
    case 13: return "Permission denied";
    case 14: return "Bad address";
    case 19: return "No such device";
    case 20: return "Not a directory";
    case 21: return "Is a directory";
    case 22: return "Invalid argument";
    case 23: return "Too many open files in system";
    case 24: return "Too many open files";
    case 26: return "Text file busy";
    case 36: return "File name too long";
    case 40: return "Too many levels of symbolic links";
    case 80: return "Accessing a corrupted shared library";
    case 110: return "Connection timed out";
    case 116: return "Stale file handle";
    default: return 0;
    }
}

/// Writes `json` to `path` through `path.tmp` and a rename, so that a reader sees all or nothing.
static void write_status(const char *path, const struct buffer *json) {
    struct buffer temporary = {0};
    append_text(&temporary, path);
    append(&temporary, ".tmp", 5);
    int fd = open_file(temporary.bytes, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0) return;
    long written;
    do {
        written = syscall3(SYS_write, fd, json->bytes, json->count);
    } while (written == -EINTR);
    syscall1(SYS_close, fd);
    if (written == (long)json->count) {
        rename_file(temporary.bytes, path);
    } else {
        unlink_file(temporary.bytes);
    }
    release(&temporary);
}

static void write_number(const char *path, const char *key, int value) {
    struct buffer json = {0};
    append_text(&json, "{\"");
    append_text(&json, key);
    append_text(&json, "\":");
    append_number(&json, value);
    append_text(&json, "}");
    write_status(path, &json);
    release(&json);
}

static void write_start_error(const char *path, const char *program, int code) {
    struct buffer message = {0};
    append_text(&message, "cannot start ");
    append_text(&message, program);
    append_text(&message, ": ");
    const char *text = error_text(code);
    if (text) {
        append_text(&message, text);
    } else {
        append_text(&message, "Unknown error ");
        append_number(&message, code);
    }
    if (code == ENOENT) append_text(&message, " (is it installed and on PATH?)");
    if (code == EACCES) append_text(&message, " (is it executable?)");
    append(&message, "", 1);
    struct buffer json = {0};
    append_text(&json, "{\"startError\":");
    append_json_string(&json, message.bytes);
    append_text(&json, "}");
    write_status(path, &json);
    release(&json);
    release(&message);
}

/// Puts back the umask kept in KNOB_USER_UMASK (octal digits, at most 0777), if it is there.
static void restore_user_umask(char **envp) {
    const char *text = environment_value(envp, "KNOB_USER_UMASK");
    if (text == 0 || *text == '\0') return;
    unsigned long mask = 0;
    for (const char *p = text; *p; p++) {
        if (*p < '0' || *p > '7') return;
        mask = mask * 8 + (unsigned long)(*p - '0');
        if (mask > 0777) return;
    }
    syscall1(SYS_umask, mask);
}

/// In the child: every descriptor above 2 closes when the program starts (the error pipe only then).
static void close_descriptors_on_exec(void) {
    if (syscall3(SYS_close_range, 3, ~0U, CLOSE_RANGE_CLOEXEC) == 0) return;
    unsigned long limits[2] = {1024, 1024};
    syscall4(SYS_prlimit64, 0, RLIMIT_NOFILE, 0, limits);
    unsigned long last = limits[0] > 1048576 ? 1048576 : limits[0];
    for (unsigned long fd = 3; fd < last; fd++) syscall3(SYS_fcntl, fd, F_SETFD, FD_CLOEXEC);
}

/// In the child: starts `command` as posix_spawnp does (a name without a slash is looked up on PATH,
/// /bin:/usr/bin when PATH is not set; a directory that denies it is passed over, and then named if
/// nothing else is found); returns the error when nothing could be started.
static int start_program(char **command, char **envp) {
    const char *file = command[0];
    if (has_slash(file)) return (int)-syscall3(SYS_execve, file, command, envp);
    const char *path = environment_value(envp, "PATH");
    if (path == 0) path = "/bin:/usr/bin";
    size_t file_length = length(file);
    int denied = 0, error = ENOENT;
    for (const char *start = path;; ) {
        const char *end = start;
        while (*end && *end != ':') end++;
        size_t directory = (size_t)(end - start);
        char candidate[4096 + 256];
        if (directory + 1 + file_length + 1 <= sizeof candidate) {
            size_t at = 0;
            if (directory > 0) {
                memcpy(candidate, start, directory);
                at = directory;
                candidate[at++] = '/';
            }
            memcpy(candidate + at, file, file_length + 1);
            error = (int)-syscall3(SYS_execve, candidate, command, envp);
            if (error == EACCES) {
                denied = 1;
            } else if (error != ENOENT && error != ENOTDIR && error != ESTALE && error != ENODEV && error != ETIMEDOUT) {
                return error;
            }
        }
        if (*end == '\0') break;
        start = end + 1;
    }
    return denied ? EACCES : error;
}

// ---- knob-supervise --serve: one supervisor for many trials
//
// Reads requests on descriptor 0 and answers on descriptor 1 (both ends of one socket of knob's).
// A request is four native 32-bit words -- the size of what follows, argc, envc, the request's
// number -- then NUL-terminated strings: the status file, the log file, the working folder, argc
// arguments and envc environment entries. The trial runs as with --status, but leads a process
// group of its own and appends its output to the log file.
//
// An answer is four native 32-bit words -- what happened, the pid, a value, the request's number --
// and a native 64-bit number: (1, pid, 0) and when it started (clock ticks since boot, field 22 of
// /proc/PID/stat) once the program has started; (2, pid or 0, error) when it could not start (the
// status file then says why); (3, pid, wait status) once it has ended and its status file is
// written. Starts are not waited for one by one: a request is answered when its program has
// started, and others may be answered first. When descriptor 0 reaches its end (knob exited or
// died) it goes on until its last trial has ended and its status is written, then exits.

/// A trial: its process, the pipe that says whether it started (-1 once it has), its request's
/// number, when it started, its status file and its program (to say why it could not start).
struct trial {
    int pid, starting, request;
    unsigned long started;
    char status[4084];
    char program[4096];
};

/// When process `pid` started: field 22 of /proc/PID/stat, clock ticks since boot (0 when it cannot be read).
static unsigned long start_ticks(long pid) {
    struct buffer path = {0};
    append_text(&path, "/proc/");
    append_number(&path, pid);
    append(&path, "/stat", 6);
    char stat[1024];
    long got = -1;
    int fd = open_file(path.bytes, O_RDONLY | O_CLOEXEC, 0);
    release(&path);
    if (fd >= 0) {
        got = syscall3(SYS_read, fd, stat, sizeof stat);
        syscall1(SYS_close, fd);
    }
    long close = -1;
    for (long i = 0; i < got; i++) if (stat[i] == ')') close = i;
    unsigned long start = 0;
    int field = 2;
    for (long i = close + 1; close >= 0 && i < got; i++) {
        if (stat[i] == ' ') {
            field++;
        } else if (field == 22 && stat[i] >= '0' && stat[i] <= '9') {
            start = start * 10 + (unsigned long)(stat[i] - '0');
        }
    }
    return start;
}

/// Writes all of `count` bytes (a socket may take fewer at once).
static void write_all(int fd, const void *bytes, size_t count) {
    const char *at = bytes;
    while (count > 0) {
        long written = syscall3(SYS_write, fd, at, count);
        if (written == -EINTR) continue;
        if (written <= 0) return;
        at += written;
        count -= (size_t)written;
    }
}

static void answer(int kind, int pid, int value, int request, unsigned long started) {
    int record[6] = {kind, pid, value, request, 0, 0};
    memcpy(&record[4], &started, sizeof started);
    write_all(1, record, sizeof record);
}

/// Forks the trial of one request whose strings begin at `strings`; it is answered once it has started.
static void start_trial(struct buffer *trials, struct buffer *pointers, char *strings, unsigned argc, unsigned envc, int request) {
    char *status = strings;
    char *log = status + length(status) + 1;
    char *folder = log + length(log) + 1;
    char *next = folder + length(folder) + 1;
    char *none = 0;
    pointers->count = 0;
    for (unsigned i = 0; i < argc; i++, next += length(next) + 1) append(pointers, (char *)&next, sizeof next);
    append(pointers, (char *)&none, sizeof none);
    for (unsigned i = 0; i < envc; i++, next += length(next) + 1) append(pointers, (char *)&next, sizeof next);
    append(pointers, (char *)&none, sizeof none);
    char **command = (char **)pointers->bytes;
    char **envp = command + argc + 1;
    if (length(status) >= sizeof ((struct trial *)0)->status) {
        answer(2, 0, ENAMETOOLONG, request, 0);
        return;
    }
    int errors[2];
    long piped = syscall2(SYS_pipe2, errors, O_CLOEXEC);
    if (piped < 0) {
        write_start_error(status, command[0], (int)-piped);
        answer(2, 0, (int)-piped, request, 0);
        return;
    }
    long child = fork_process();
    if (child == 0) {
        syscall1(SYS_close, errors[0]);
        syscall2(SYS_setpgid, 0, 0);
        int error = 0;
        int null = open_file("/dev/null", O_RDONLY, 0);
        if (null >= 0 && null != 0) {
            move_descriptor(null, 0);
            syscall1(SYS_close, null);
        }
        int output = open_file(log, O_WRONLY | O_CREAT | O_APPEND, 0600);
        if (output < 0) {
            error = -output;
        } else {
            move_descriptor(output, 1);
            move_descriptor(output, 2);
            if (output > 2) syscall1(SYS_close, output);
        }
        if (error == 0 && *folder) {
            long changed = syscall1(SYS_chdir, folder);
            if (changed < 0) error = (int)-changed;
        }
        restore_user_umask(envp);
        close_descriptors_on_exec();
        const int reset[] = {SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGPIPE, SIGCHLD, SIGUSR1, SIGUSR2, SIGALRM};
        for (size_t i = 0; i < sizeof reset / sizeof reset[0]; i++) set_disposition(reset[i], 0);  // SIG_DFL
        unsigned long empty = 0;
        syscall4(SYS_rt_sigprocmask, SIG_SETMASK, &empty, 0, 8);
        if (error == 0) error = start_program(command, envp);
        write_all(errors[1], &error, sizeof error);
        exit_group(127);
    }
    syscall1(SYS_close, errors[1]);
    if (child < 0) {
        syscall1(SYS_close, errors[0]);
        write_start_error(status, command[0], (int)-child);
        answer(2, 0, (int)-child, request, 0);
        return;
    }
    syscall2(SYS_setpgid, child, child);
    struct trial entry;
    entry.pid = (int)child;
    entry.starting = errors[0];
    entry.request = request;
    // Read now: only this process reaps the child, so its pid cannot be another's yet.
    entry.started = start_ticks(child);
    memcpy(entry.status, status, length(status) + 1);
    size_t program = length(command[0]);
    if (program >= sizeof entry.program) program = sizeof entry.program - 1;
    memcpy(entry.program, command[0], program);
    entry.program[program] = '\0';
    append(trials, (char *)&entry, sizeof entry);
}

static void forget(struct buffer *trials, size_t index) {
    struct trial *all = (struct trial *)trials->bytes;
    size_t count = trials->count / sizeof *all;
    if (index + 1 < count) memcpy(&all[index], &all[count - 1], sizeof *all);
    trials->count -= sizeof *all;
}

/// Learns from a starting trial's pipe whether its program started: answers 1, or 2 after writing why
/// not (and reaping it, unless `reaped`). Returns whether it started.
static int learn_start(struct buffer *trials, size_t index, int reaped) {
    struct trial *entry = (struct trial *)trials->bytes + index;
    int error = 0;
    long got;
    do {
        got = syscall3(SYS_read, entry->starting, &error, sizeof error);
    } while (got == -EINTR);
    syscall1(SYS_close, entry->starting);
    entry->starting = -1;
    if (got != (long)sizeof error) {
        answer(1, entry->pid, 0, entry->request, entry->started);
        return 1;
    }
    if (!reaped) {
        int ignored = 0;
        while (syscall4(SYS_wait4, entry->pid, &ignored, 0, 0) == -EINTR) {}
    }
    write_start_error(entry->status, entry->program, error);
    answer(2, entry->pid, error, entry->request, 0);
    forget(trials, index);
    return 0;
}

/// Writes the status of every trial that has ended, and says so.
static void reap(struct buffer *trials) {
    for (;;) {
        int status = 0;
        long pid = syscall4(SYS_wait4, -1, &status, WNOHANG, 0);
        if (pid == -EINTR) continue;
        if (pid <= 0) return;
        struct trial *all = (struct trial *)trials->bytes;
        size_t count = trials->count / sizeof *all;
        for (size_t i = 0; i < count; i++) {
            if (all[i].pid != pid) continue;
            // Ended before its start was read from the pipe: the pipe says whether it started at all.
            if (all[i].starting >= 0 && !learn_start(trials, i, 1)) break;
            if ((status & 0x7f) == 0) {
                write_number(all[i].status, "exitCode", (status >> 8) & 0xff);
            } else {
                write_number(all[i].status, "signal", status & 0x7f);
            }
            answer(3, (int)pid, status, all[i].request, 0);
            forget(trials, i);
            break;
        }
    }
}

/// Whether a request's `size` bytes of strings hold exactly the strings its words say.
static int well_formed(const char *strings, unsigned size, unsigned argc, unsigned envc) {
    if (size == 0 || strings[size - 1] != '\0' || argc == 0 || argc > (1u << 20) || envc > (1u << 20)) return 0;
    unsigned ends = 0;
    for (unsigned i = 0; i < size; i++) ends += strings[i] == '\0';
    return ends == 3 + argc + envc;
}

struct watched {
    int fd;
    short events, revents;
};

static _Noreturn void serve(void) {
    // Nothing is said on stderr; the starter's, kept open, would hold up whoever reads it to its end.
    int null = open_file("/dev/null", O_WRONLY, 0);
    if (null >= 0 && null != 2) {
        move_descriptor(null, 2);
        syscall1(SYS_close, null);
    }
    // Nor does it hold its starter's folder (each trial names its own).
    syscall1(SYS_chdir, "/");
    set_disposition(SIGTERM, 1);  // SIG_IGN
    set_disposition(SIGINT, 1);
    set_disposition(SIGHUP, 1);
    set_disposition(SIGPIPE, 1);
    unsigned long child_signal = 1UL << (SIGCHLD - 1);
    syscall4(SYS_rt_sigprocmask, SIG_BLOCK, &child_signal, 0, 8);
    int children = (int)syscall4(SYS_signalfd4, -1, &child_signal, 8, O_CLOEXEC | O_NONBLOCK);
    if (children < 0) exit_group(1);
    struct buffer input = {0}, trials = {0}, pointers = {0}, polled = {0};
    int reading = 1;
    static char chunk[1 << 16];
    for (;;) {
        reap(&trials);
        if (!reading && trials.count == 0) exit_group(0);
        // The signal descriptor, the requests, then each starting trial's pipe.
        polled.count = 0;
        struct watched fixed[2] = {{children, POLLIN, 0}, {reading ? 0 : -1, POLLIN, 0}};
        append(&polled, (char *)fixed, sizeof fixed);
        size_t count = trials.count / sizeof(struct trial);
        for (size_t i = 0; i < count; i++) {
            struct watched pipe = {((struct trial *)trials.bytes)[i].starting, POLLIN, 0};
            append(&polled, (char *)&pipe, sizeof pipe);
        }
        struct watched *watched = (struct watched *)polled.bytes;
        if (syscall6(SYS_ppoll, (long)watched, (long)(polled.count / sizeof *watched), 0, 0, 8, 0) < 0) continue;
        if (watched[0].revents) {
            char information[128];
            while (syscall3(SYS_read, children, information, sizeof information) > 0) {}
        }
        // Pipes first, from the last (a failed start drops its trial, moving the last one to its place).
        for (size_t i = count; i-- > 0;) {
            if (watched[2 + i].fd >= 0 && watched[2 + i].revents) learn_start(&trials, i, 0);
        }
        if (watched[1].revents == 0) continue;
        long got = syscall3(SYS_read, 0, chunk, sizeof chunk);
        if (got == -EINTR || got == -EAGAIN) continue;
        if (got <= 0) {
            reading = 0;
            continue;
        }
        append(&input, chunk, (size_t)got);
        size_t at = 0;
        while (input.count - at >= 16) {
            unsigned words[4];
            memcpy(words, input.bytes + at, sizeof words);
            if (words[0] > (1u << 26)) {
                // Not knob's: nothing more can be read in step.
                reading = 0;
                at = input.count;
                break;
            }
            if (input.count - at - 16 < words[0]) break;
            char *strings = input.bytes + at + 16;
            if (well_formed(strings, words[0], words[1], words[2])) {
                start_trial(&trials, &pointers, strings, words[1], words[2], (int)words[3]);
            } else {
                answer(2, 0, EINVAL, (int)words[3], 0);
            }
            at += 16 + words[0];
        }
        // What is left moves to the front (forwards, byte by byte: the two ranges may overlap).
        for (size_t k = 0; k + at < input.count; k++) input.bytes[k] = input.bytes[k + at];
        input.count -= at;
    }
}

_Noreturn void knob_supervise_start(long *stack) __attribute__((used));

_Noreturn void knob_supervise_start(long *stack) {
    int argc = (int)stack[0];
    char **argv = (char **)(stack + 1);
    char **envp = argv + argc + 1;
    if (argc == 2 && same(argv[1], "--serve")) serve();
    if (argc < 5 || !same(argv[1], "--status") || !same(argv[3], "--")) {
        struct buffer usage = {0};
        append_text(&usage, "usage: ");
        append_text(&usage, argc > 0 ? argv[0] : "knob-supervise");
        append_text(&usage, " --status FILE -- COMMAND [ARG...]  or  --serve\n");
        syscall3(SYS_write, 2, usage.bytes, usage.count);
        exit_group(2);
    }
    const char *status_path = argv[2];
    char **command = argv + 4;
    set_disposition(SIGTERM, 1);  // SIG_IGN
    set_disposition(SIGINT, 1);
    set_disposition(SIGHUP, 1);
    // The trial's files get the user's modes; the status file stays private (written with 0600).
    restore_user_umask(envp);

    // The child says why it could not start the program through a pipe that closes when it does.
    int errors[2];
    long piped = syscall2(SYS_pipe2, errors, O_CLOEXEC);
    if (piped < 0) {
        write_start_error(status_path, command[0], (int)-piped);
        exit_group(0);
    }
    // Signals wait until the child has set its own dispositions: a SIGTERM to the group meanwhile then reaches
    // the child (which dies of it, as the trial would) instead of being lost to the ignoring it inherited.
    unsigned long all = ~0UL, previous = 0;
    syscall4(SYS_rt_sigprocmask, SIG_SETMASK, &all, &previous, 8);
    long child = fork_process();
    if (child == 0) {
        syscall1(SYS_close, errors[0]);
        int null = open_file("/dev/null", O_RDONLY, 0);
        if (null >= 0 && null != 0) {
            move_descriptor(null, 0);
            syscall1(SYS_close, null);
        }
        close_descriptors_on_exec();
        const int reset[] = {SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGPIPE, SIGCHLD, SIGUSR1, SIGUSR2, SIGALRM};
        for (size_t i = 0; i < sizeof reset / sizeof reset[0]; i++) set_disposition(reset[i], 0);  // SIG_DFL
        unsigned long empty = 0;
        syscall4(SYS_rt_sigprocmask, SIG_SETMASK, &empty, 0, 8);
        int error = start_program(command, envp);
        syscall3(SYS_write, errors[1], &error, sizeof error);
        exit_group(127);
    }
    syscall4(SYS_rt_sigprocmask, SIG_SETMASK, &previous, 0, 8);
    syscall1(SYS_close, errors[1]);
    if (child < 0) {
        write_start_error(status_path, command[0], (int)-child);
        exit_group(0);
    }
    int error = 0;
    long got;
    do {
        got = syscall3(SYS_read, errors[0], &error, sizeof error);
    } while (got == -EINTR);
    syscall1(SYS_close, errors[0]);
    int status = 0;
    while (syscall4(SYS_wait4, child, &status, 0, 0) == -EINTR) {}
    if (got == (long)sizeof error) {
        write_start_error(status_path, command[0], error);
    } else if ((status & 0x7f) == 0) {
        write_number(status_path, "exitCode", (status >> 8) & 0xff);
    } else {
        write_number(status_path, "signal", status & 0x7f);
    }
    exit_group(0);
}
