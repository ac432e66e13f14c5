// knob-supervise --status FILE -- COMMAND [ARG...]
//
// The small form of `knob __supervise` (Sources/Knob/Runner/Supervisor.swift), with exactly its
// protocol: runs COMMAND in the caller's process group (stdout, stderr and working directory
// inherited, stdin from /dev/null, descriptors above 2 closed, signal mask and dispositions
// reset), waits for it, and writes how it ended to FILE as JSON -- {"exitCode":3}, {"signal":9}
// or {"startError":"..."} -- atomically (FILE.tmp with mode 0600, then rename). It ignores
// SIGTERM, SIGINT and SIGHUP itself, so that stopping the group leaves it to record the end.
// Before starting COMMAND it puts back the user's umask kept in KNOB_USER_UMASK.
//
// The status file is byte for byte what the Swift supervisor writes (Foundation's
// JSONSerialization: no spaces, "/" escaped as "\/"), so that either can read the other's after
// an upgrade. It starts in about a millisecond where the knob binary takes tens.
#define _GNU_SOURCE 1
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

extern char **environ;

/// A growing byte buffer for the JSON text.
struct buffer {
    char *bytes;
    size_t count, capacity;
};

static void append(struct buffer *buffer, const char *bytes, size_t count) {
    if (buffer->count + count > buffer->capacity) {
        size_t capacity = (buffer->capacity + count) * 2;
        char *grown = realloc(buffer->bytes, capacity);
        if (grown == NULL) abort();
        buffer->bytes = grown;
        buffer->capacity = capacity;
    }
    memcpy(buffer->bytes + buffer->count, bytes, count);
    buffer->count += count;
}

static void append_text(struct buffer *buffer, const char *text) { append(buffer, text, strlen(text)); }

/// A JSON string as swift-corelibs-foundation's JSONSerialization writes it: `"`, `\` and `/`
/// escaped, \b \f \n \r \t by name, other control characters as \u00xx (lowercase hex), everything
/// else (UTF-8 included) as it is.
static void append_json_string(struct buffer *buffer, const char *text) {
    append_text(buffer, "\"");
    for (const unsigned char *p = (const unsigned char *)text; *p; p++) {
        char escaped[8];
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
                snprintf(escaped, sizeof escaped, "\\u%04x", *p);
                append_text(buffer, escaped);
            } else {
                append(buffer, (const char *)p, 1);
            }
        }
    }
    append_text(buffer, "\"");
}

/// Writes `json` to `path` through `path.tmp` and a rename, so that a reader sees all or nothing.
static void write_status(const char *path, const struct buffer *json) {
    size_t length = strlen(path);
    char *temporary = malloc(length + 5);
    if (temporary == NULL) return;
    memcpy(temporary, path, length);
    memcpy(temporary + length, ".tmp", 5);
    int fd = open(temporary, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0) {
        free(temporary);
        return;
    }
    ssize_t written;
    do {
        written = write(fd, json->bytes, json->count);
    } while (written < 0 && errno == EINTR);
    close(fd);
    if (written == (ssize_t)json->count) {
        rename(temporary, path);
    } else {
        unlink(temporary);
    }
    free(temporary);
}

static void write_number(const char *path, const char *key, int value) {
    struct buffer json = {0};
    char text[64];
    snprintf(text, sizeof text, "{\"%s\":%d}", key, value);
    append_text(&json, text);
    write_status(path, &json);
    free(json.bytes);
}

static void write_start_error(const char *path, const char *program, int code) {
    struct buffer json = {0};
    struct buffer message = {0};
    append_text(&message, "cannot start ");
    append_text(&message, program);
    append_text(&message, ": ");
    append_text(&message, strerror(code));
    if (code == ENOENT) append_text(&message, " (is it installed and on PATH?)");
    if (code == EACCES) append_text(&message, " (is it executable?)");
    append(&message, "", 1);
    append_text(&json, "{\"startError\":");
    append_json_string(&json, message.bytes);
    append_text(&json, "}");
    write_status(path, &json);
    free(message.bytes);
    free(json.bytes);
}

/// Puts back the umask kept in KNOB_USER_UMASK (octal digits, at most 0777), if it is there.
static void restore_user_umask(void) {
    const char *text = getenv("KNOB_USER_UMASK");
    if (text == NULL || *text == '\0') return;
    unsigned long mask = 0;
    for (const char *p = text; *p; p++) {
        if (*p < '0' || *p > '7') return;
        mask = mask * 8 + (unsigned long)(*p - '0');
        if (mask > 0777) return;
    }
    umask((mode_t)mask);
}

int main(int argc, char **argv) {
    if (argc < 5 || strcmp(argv[1], "--status") != 0 || strcmp(argv[3], "--") != 0) {
        fprintf(stderr, "usage: %s --status FILE -- COMMAND [ARG...]\n", argc > 0 ? argv[0] : "knob-supervise");
        return 2;
    }
    const char *status_path = argv[2];
    char **command = argv + 4;
    signal(SIGTERM, SIG_IGN);
    signal(SIGINT, SIG_IGN);
    signal(SIGHUP, SIG_IGN);
    // The trial's files get the user's modes; the status file stays private (written with 0600).
    restore_user_umask();

    posix_spawn_file_actions_t actions;
    posix_spawn_file_actions_init(&actions);
    posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0);
    posix_spawn_file_actions_addclosefrom_np(&actions, 3);
    posix_spawnattr_t attributes;
    posix_spawnattr_init(&attributes);
    sigset_t empty;
    sigemptyset(&empty);
    posix_spawnattr_setsigmask(&attributes, &empty);
    sigset_t defaults;
    sigemptyset(&defaults);
    const int reset[] = {SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGPIPE, SIGCHLD, SIGUSR1, SIGUSR2, SIGALRM};
    for (size_t i = 0; i < sizeof reset / sizeof reset[0]; i++) sigaddset(&defaults, reset[i]);
    posix_spawnattr_setsigdefault(&attributes, &defaults);
    posix_spawnattr_setflags(&attributes, POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF);

    pid_t child;
    int error = posix_spawnp(&child, command[0], &actions, &attributes, command, environ);
    posix_spawn_file_actions_destroy(&actions);
    posix_spawnattr_destroy(&attributes);
    if (error != 0) {
        write_start_error(status_path, command[0], error);
        return 0;
    }
    int status = 0;
    while (waitpid(child, &status, 0) < 0 && errno == EINTR) {}
    if (WIFEXITED(status)) {
        write_number(status_path, "exitCode", WEXITSTATUS(status));
    } else {
        write_number(status_path, "signal", WTERMSIG(status));
    }
    return 0;
}
