/* A post-install handler written in C against the generated header:
 * writes "<package_dir>/c-example.marker" and returns exit code 0.
 *
 *   cc -shared -fPIC -I plugin-api/include -o c_example.so plugins/c-example/example.c
 *
 * The request is JSON; this example only needs "package_dir" and reads it
 * with a minimal scan (a real plugin would use a JSON parser). */
#include <stdio.h>
#include <string.h>

#include "dmagent_plugin.h"

static void log_info(const dmagent_host_api *host, const char *msg) {
    static const char target[] = "c_example";
    host->log(host->ctx, DMAGENT_LOG_INFO, (const uint8_t *)target, sizeof target - 1,
              (const uint8_t *)msg, strlen(msg));
}

static int32_t fail(const dmagent_host_api *host, const char *message) {
    char json[512];
    int n = snprintf(json, sizeof json, "{\"message\":\"%s\"}", message);
    host->set_result(host->ctx, (const uint8_t *)json, (size_t)n);
    return DMAGENT_RC_PLUGIN_ERROR;
}

static int32_t call(const dmagent_host_api *host, const uint8_t *request, size_t request_len) {
    static const char key[] = "\"package_dir\":\"";
    char buf[4096], dir[2048], path[2100];
    if (request_len >= sizeof buf) return fail(host, "request too large");
    memcpy(buf, request, request_len);
    buf[request_len] = '\0';
    const char *start = strstr(buf, key);
    if (!start) return fail(host, "no package_dir");
    start += sizeof key - 1;
    const char *end = strchr(start, '"');
    if (!end || (size_t)(end - start) >= sizeof dir) return fail(host, "bad package_dir");
    memcpy(dir, start, (size_t)(end - start));
    dir[end - start] = '\0';
    snprintf(path, sizeof path, "%s/c-example.marker", dir);
    FILE *f = fopen(path, "w");
    if (!f) return fail(host, "cannot write the marker");
    fputs("written by the C example plugin\n", f);
    fclose(f);
    log_info(host, "marker written");
    static const char result[] = "{\"exit_code\":0,\"output_tail\":\"marker written\"}";
    host->set_result(host->ctx, (const uint8_t *)result, sizeof result - 1);
    return DMAGENT_RC_OK;
}

static const dmagent_plugin_descriptor descriptor = {
    sizeof(dmagent_plugin_descriptor),
    DMAGENT_ABI_MAJOR,
    DMAGENT_ABI_MINOR,
    DMAGENT_KIND_POST_INSTALL,
    "c-example",
    "1.0.0",
    0,
    call,
};

const dmagent_plugin_descriptor *dmagent_plugin_v1(void) { return &descriptor; }
