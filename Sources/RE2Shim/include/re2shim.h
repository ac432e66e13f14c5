// A C face of RE2 (Debian's libre2), the regular-expression engine whose syntax Go's regexp and
// so Katib's metrics collector use: linear-time matching, no backtracking.
#ifndef KNOB_RE2SHIM_H
#define KNOB_RE2SHIM_H

#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct knob_regex knob_regex;

/// Compiles `pattern` (RE2 syntax, UTF-8, `length` bytes). On failure returns NULL, sets `*error`
/// to a message the caller frees with `free`, and `*error_offset` to the byte offset of the part
/// of the pattern at fault (-1 when unknown).
knob_regex *knob_regex_compile(const char *pattern, size_t length, char **error, long *error_offset);

/// The number of capturing groups.
int knob_regex_group_count(const knob_regex *regex);

/// Finds the leftmost match in text[start, length). On a match returns 1 and fills `offsets` with
/// 2 × (groups + 1) byte offsets into `text`, begin and end of the whole match and of each group
/// (-1, -1 for a group that took no part); `groups` is at most `knob_regex_group_count`.
int knob_regex_search(const knob_regex *regex, const char *text, size_t length, size_t start, long *offsets, int groups);

void knob_regex_free(knob_regex *regex);

#ifdef __cplusplus
}
#endif

#endif
