#include "re2shim.h"

#include <re2/re2.h>

#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

struct knob_regex {
    re2::RE2 compiled;
    explicit knob_regex(const re2::StringPiece &pattern, const re2::RE2::Options &options) : compiled(pattern, options) {}
};

extern "C" knob_regex *knob_regex_compile(const char *pattern, size_t length, char **error, long *error_offset) {
    re2::RE2::Options options;
    options.set_log_errors(false);
    re2::StringPiece text(pattern, length);
    auto *regex = new knob_regex(text, options);
    if (regex->compiled.ok()) return regex;
    const std::string &message = regex->compiled.error();
    const std::string &argument = regex->compiled.error_arg();
    if (error) {
        *error = static_cast<char *>(std::malloc(message.size() + 1));
        if (*error) std::memcpy(*error, message.c_str(), message.size() + 1);
    }
    if (error_offset) {
        size_t at = argument.empty() ? std::string::npos : std::string(pattern, length).find(argument);
        *error_offset = at == std::string::npos ? -1 : static_cast<long>(at);
    }
    delete regex;
    return nullptr;
}

extern "C" int knob_regex_group_count(const knob_regex *regex) {
    return regex->compiled.NumberOfCapturingGroups();
}

extern "C" int knob_regex_search(const knob_regex *regex, const char *text, size_t length, size_t start, long *offsets, int groups) {
    if (start > length) return 0;
    std::vector<re2::StringPiece> found(static_cast<size_t>(groups) + 1);
    re2::StringPiece input(text, length);
    if (!regex->compiled.Match(input, start, length, re2::RE2::UNANCHORED, found.data(), groups + 1)) return 0;
    for (int i = 0; i <= groups; i++) {
        if (found[i].data() == nullptr) {
            offsets[2 * i] = -1;
            offsets[2 * i + 1] = -1;
        } else {
            offsets[2 * i] = static_cast<long>(found[i].data() - text);
            offsets[2 * i + 1] = static_cast<long>(found[i].data() - text + found[i].size());
        }
    }
    return 1;
}

extern "C" void knob_regex_free(knob_regex *regex) {
    delete regex;
}
