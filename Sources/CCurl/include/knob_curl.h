#ifndef KNOB_CURL_H
#define KNOB_CURL_H

// libcurl's types and constants, and the calls knob makes, through a copy of libcurl loaded on first
// use (knob_curl.c): a knobd or knob that never speaks HTTP never loads libcurl and the thirty
// libraries behind it (TLS, Kerberos, LDAP, SSH...). Call only the knob_curl_ functions; libcurl's own
// are not linked.
#include <curl/curl.h>

// Loads libcurl once; NULL when it is there, else what the loader said (the same text each time).
const char *knob_curl_load(void);

// Each is libcurl's call of the same name; knob_curl_easy_init answers NULL when libcurl cannot be
// loaded, and the others need a handle (or list) from it.
CURL *knob_curl_easy_init(void);
void knob_curl_easy_cleanup(CURL *handle);
CURLcode knob_curl_easy_perform(CURL *handle);
const char *knob_curl_easy_strerror(CURLcode code);
struct curl_slist *knob_curl_slist_append(struct curl_slist *list, const char *text);
void knob_curl_slist_free_all(struct curl_slist *list);

// curl_easy_setopt and curl_easy_getinfo are variadic and do not import into Swift: one typed
// function per argument kind.
CURLcode knob_curl_setopt_long(CURL *handle, CURLoption option, long value);
CURLcode knob_curl_setopt_string(CURL *handle, CURLoption option, const char *value);
CURLcode knob_curl_setopt_pointer(CURL *handle, CURLoption option, void *value);
CURLcode knob_curl_setopt_slist(CURL *handle, CURLoption option, struct curl_slist *value);
CURLcode knob_curl_setopt_write(CURL *handle, size_t (*callback)(char *, size_t, size_t, void *));
CURLcode knob_curl_setopt_header(CURL *handle, size_t (*callback)(char *, size_t, size_t, void *));
CURLcode knob_curl_setopt_xferinfo(CURL *handle, int (*callback)(void *, curl_off_t, curl_off_t, curl_off_t, curl_off_t));
// PEM in memory (kubeconfig's *-data fields); libcurl copies the bytes.
CURLcode knob_curl_setopt_blob(CURL *handle, CURLoption option, const void *data, size_t length);
CURLcode knob_curl_getinfo_long(CURL *handle, CURLINFO info, long *value);

#endif
