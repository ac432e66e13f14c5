#include "knob_curl.h"

#include <dlfcn.h>
#include <pthread.h>
#include <stdio.h>

// The soname of libcurl's ABI 4, which Debian's libcurl4 (and every libcurl since 7.16) provides.
#define LIBCURL "libcurl.so.4"

static struct {
    CURLcode (*global_init)(long flags);
    CURL *(*easy_init)(void);
    void (*easy_cleanup)(CURL *handle);
    CURLcode (*easy_perform)(CURL *handle);
    const char *(*easy_strerror)(CURLcode code);
    CURLcode (*easy_setopt)(CURL *handle, CURLoption option, ...);
    CURLcode (*easy_getinfo)(CURL *handle, CURLINFO info, ...);
    struct curl_slist *(*slist_append)(struct curl_slist *list, const char *text);
    void (*slist_free_all)(struct curl_slist *list);
} curl;

static pthread_once_t loaded = PTHREAD_ONCE_INIT;
static const char *failure;
static char failureText[512];

static void load(void) {
    void *library = dlopen(LIBCURL, RTLD_NOW | RTLD_LOCAL);
    if (library == NULL) {
        const char *reason = dlerror();
        snprintf(failureText, sizeof failureText, "%s", reason ? reason : "cannot load " LIBCURL);
        failure = failureText;
        return;
    }
#define FIND(field, name)                                                                         \
    if ((*(void **)&curl.field = dlsym(library, name)) == NULL) {                                 \
        snprintf(failureText, sizeof failureText, "%s has no %s", LIBCURL, name);              \
        failure = failureText;                                                                    \
        return;                                                                                   \
    }
    FIND(global_init, "curl_global_init")
    FIND(easy_init, "curl_easy_init")
    FIND(easy_cleanup, "curl_easy_cleanup")
    FIND(easy_perform, "curl_easy_perform")
    FIND(easy_strerror, "curl_easy_strerror")
    FIND(easy_setopt, "curl_easy_setopt")
    FIND(easy_getinfo, "curl_easy_getinfo")
    FIND(slist_append, "curl_slist_append")
    FIND(slist_free_all, "curl_slist_free_all")
#undef FIND
    // Once per process, before any other thread uses libcurl (pthread_once holds the others back).
    if (curl.global_init(CURL_GLOBAL_ALL) != CURLE_OK) {
        snprintf(failureText, sizeof failureText, "%s could not initialize itself", LIBCURL);
        failure = failureText;
    }
}

const char *knob_curl_load(void) {
    pthread_once(&loaded, load);
    return failure;
}

CURL *knob_curl_easy_init(void) { return knob_curl_load() == NULL ? curl.easy_init() : NULL; }
void knob_curl_easy_cleanup(CURL *handle) { if (handle != NULL) curl.easy_cleanup(handle); }
CURLcode knob_curl_easy_perform(CURL *handle) { return curl.easy_perform(handle); }
const char *knob_curl_easy_strerror(CURLcode code) {
    return knob_curl_load() == NULL ? curl.easy_strerror(code) : failure;
}
struct curl_slist *knob_curl_slist_append(struct curl_slist *list, const char *text) {
    return knob_curl_load() == NULL ? curl.slist_append(list, text) : NULL;
}
void knob_curl_slist_free_all(struct curl_slist *list) { if (list != NULL) curl.slist_free_all(list); }

CURLcode knob_curl_setopt_long(CURL *handle, CURLoption option, long value) { return curl.easy_setopt(handle, option, value); }
CURLcode knob_curl_setopt_string(CURL *handle, CURLoption option, const char *value) { return curl.easy_setopt(handle, option, value); }
CURLcode knob_curl_setopt_pointer(CURL *handle, CURLoption option, void *value) { return curl.easy_setopt(handle, option, value); }
CURLcode knob_curl_setopt_slist(CURL *handle, CURLoption option, struct curl_slist *value) {
    return curl.easy_setopt(handle, option, value);
}
CURLcode knob_curl_setopt_write(CURL *handle, size_t (*callback)(char *, size_t, size_t, void *)) {
    return curl.easy_setopt(handle, CURLOPT_WRITEFUNCTION, callback);
}
CURLcode knob_curl_setopt_header(CURL *handle, size_t (*callback)(char *, size_t, size_t, void *)) {
    return curl.easy_setopt(handle, CURLOPT_HEADERFUNCTION, callback);
}
CURLcode knob_curl_setopt_xferinfo(CURL *handle, int (*callback)(void *, curl_off_t, curl_off_t, curl_off_t, curl_off_t)) {
    return curl.easy_setopt(handle, CURLOPT_XFERINFOFUNCTION, callback);
}
CURLcode knob_curl_setopt_blob(CURL *handle, CURLoption option, const void *data, size_t length) {
    struct curl_blob blob = { (void *)data, length, CURL_BLOB_COPY };
    return curl.easy_setopt(handle, option, &blob);
}
CURLcode knob_curl_getinfo_long(CURL *handle, CURLINFO info, long *value) { return curl.easy_getinfo(handle, info, value); }
