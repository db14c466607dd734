/*
 * C test of libswimraft: uses every exported function of include/swimraft.h.
 *
 * Two coordinators on 127.0.0.1 (SWIM on free ports, the second seeded with the first's
 * advertised address) must see each other within a bounded wait; NULL arguments, bad
 * configuration, restart after stop and calls from a fork() child must give their codes.
 *
 * Build and run: tests/c/run.sh. The last line is "N passed, M failed"; exit status 1 on failure.
 */
#define _POSIX_C_SOURCE 200809L

#include <dirent.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "swimraft.h"

static int passed;
static int failed;

#define CHECK(cond, ...)                                                                        \
    do {                                                                                        \
        if (cond) {                                                                             \
            passed++;                                                                           \
        } else {                                                                                \
            failed++;                                                                           \
            fprintf(stderr, "FAIL %s:%d: %s: ", __FILE__, __LINE__, #cond);                    \
            fprintf(stderr, __VA_ARGS__);                                                       \
            fprintf(stderr, " (last error: \"%s\")\n", swimraft_last_error_message());         \
        }                                                                                       \
    } while (0)

/* A call that must return `want`. */
#define CHECK_RESULT(call, want)                                                                \
    do {                                                                                        \
        swimraft_result got_ = (call);                                                          \
        CHECK(got_ == (want), "%s returned %u, want %u", #call, (unsigned)got_,                \
              (unsigned)(want));                                                                \
    } while (0)

#define POLL_LIMIT_MS 15000
#define POLL_STEP_MS 50

static void sleep_ms(long ms) {
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0) {
    }
}

/* ---- events ------------------------------------------------------------------------------ */

struct event_counter {
    atomic_int events;
    atomic_int member_events; /* events whose JSON says "type":"member" */
};

static void on_event(const char *event_json, void *userdata) {
    struct event_counter *counter = userdata;
    atomic_fetch_add(&counter->events, 1);
    if (event_json != NULL && strstr(event_json, "\"type\":\"member\"") != NULL) {
        atomic_fetch_add(&counter->member_events, 1);
    }
}

static void never_called(const char *event_json, void *userdata) {
    (void)event_json;
    (void)userdata;
}

/* ---- helpers ----------------------------------------------------------------------------- */

/* Copies the string value of "key":"..." in `json` into `out` (no escapes in the values read). */
static bool json_string_field(const char *json, const char *key, char *out, size_t out_len) {
    char pattern[128];
    snprintf(pattern, sizeof pattern, "\"%s\":\"", key);
    const char *start = strstr(json, pattern);
    if (start == NULL) {
        return false;
    }
    start += strlen(pattern);
    const char *end = strchr(start, '"');
    if (end == NULL || (size_t)(end - start) >= out_len) {
        return false;
    }
    memcpy(out, start, (size_t)(end - start));
    out[end - start] = '\0';
    return true;
}

static bool contains(const char *haystack, const char *needle) {
    return haystack != NULL && strstr(haystack, needle) != NULL;
}

static void remove_dir(const char *path) {
    DIR *dir = opendir(path);
    if (dir != NULL) {
        struct dirent *entry;
        while ((entry = readdir(dir)) != NULL) {
            if (strcmp(entry->d_name, ".") == 0 || strcmp(entry->d_name, "..") == 0) {
                continue;
            }
            char child[4096];
            snprintf(child, sizeof child, "%s/%s", path, entry->d_name);
            if (unlink(child) != 0) {
                remove_dir(child); /* a subdirectory (the Raft stores live in data_dir/raft) */
            }
        }
        closedir(dir);
    }
    rmdir(path);
}

/* Does `coordinator` list `peer` among its alive peers? */
static bool sees_peer(const swimraft_coordinator *coordinator, const char *peer) {
    char *peers = NULL;
    if (swimraft_coordinator_alive_peers_json(coordinator, &peers) != SWIMRAFT_OK) {
        return false;
    }
    char quoted[160];
    snprintf(quoted, sizeof quoted, "\"%s\"", peer);
    bool found = contains(peers, quoted);
    swimraft_string_free(peers);
    return found;
}

static swimraft_coordinator *make_node(const char *node_id, const char *cluster,
                                       const char *data_dir, const char *seed) {
    char config[1024];
    char seeds[160] = "";
    if (seed != NULL) {
        snprintf(seeds, sizeof seeds, ",\"swim_seeds\":\"%s\"", seed);
    }
    snprintf(config, sizeof config,
             "{\"node_id\":\"%s\",\"swim_enabled\":true,\"membership_mode\":\"swim\","
             "\"preset\":\"local\",\"bind_host\":\"127.0.0.1\",\"advertise_host\":\"127.0.0.1\","
             "\"swim_port\":0,\"raft_port\":0,\"cluster_name\":\"%s\",\"data_dir\":\"%s\"%s}",
             node_id, cluster, data_dir, seeds);
    swimraft_coordinator *coordinator = NULL;
    CHECK_RESULT(swimraft_coordinator_new(config, &coordinator), SWIMRAFT_OK);
    CHECK(coordinator != NULL, "new wrote no handle for %s", node_id);
    return coordinator;
}

/* ---- tests ------------------------------------------------------------------------------- */

static void test_version_and_last_error(void) {
    const char *version = swimraft_version();
    CHECK(version != NULL && strlen(version) > 0, "empty version");
    CHECK(strchr(version, '.') != NULL, "version \"%s\" has no dot", version);
    const char *message = swimraft_last_error_message();
    CHECK(message != NULL && message[0] == '\0', "last error before any failure: \"%s\"",
          message == NULL ? "(null)" : message);
    swimraft_string_free(NULL);
}

static void test_null_arguments(void) {
    char *text = (char *)(uintptr_t)0x1;
    bool flag = true;

    CHECK_RESULT(swimraft_coordinator_new("{}", NULL), SWIMRAFT_NULL_ARGUMENT);
    CHECK(contains(swimraft_last_error_message(), "out"), "message does not name `out`");
    CHECK(contains(swimraft_last_error_message(), "swimraft_coordinator_new"),
          "message does not name the function");
    CHECK_RESULT(swimraft_coordinator_start(NULL), SWIMRAFT_NULL_ARGUMENT);
    CHECK_RESULT(swimraft_coordinator_stop(NULL), SWIMRAFT_NULL_ARGUMENT);
    CHECK_RESULT(swimraft_coordinator_free(NULL), SWIMRAFT_OK);
    CHECK(strcmp(swimraft_last_error_message(), "") == 0, "a success did not clear the error");
    CHECK_RESULT(swimraft_coordinator_status_json(NULL, &text), SWIMRAFT_NULL_ARGUMENT);
    CHECK_RESULT(swimraft_coordinator_alive_peers_json(NULL, &text), SWIMRAFT_NULL_ARGUMENT);
    CHECK_RESULT(swimraft_coordinator_members_json(NULL, &text), SWIMRAFT_NULL_ARGUMENT);
    CHECK_RESULT(swimraft_coordinator_is_peer_alive(NULL, "x", &flag), SWIMRAFT_NULL_ARGUMENT);
    CHECK_RESULT(swimraft_coordinator_is_leader(NULL, &flag), SWIMRAFT_NULL_ARGUMENT);
    CHECK_RESULT(swimraft_coordinator_leader_id(NULL, &text), SWIMRAFT_NULL_ARGUMENT);
    CHECK_RESULT(swimraft_coordinator_set_event_callback(NULL, on_event, NULL),
                 SWIMRAFT_NULL_ARGUMENT);
    CHECK(text == (char *)(uintptr_t)0x1 && flag, "an out-parameter was written on failure");

    /* A real handle with NULL out-parameters and NULL strings. */
    swimraft_coordinator *coordinator = NULL;
    CHECK_RESULT(swimraft_coordinator_new("{\"node_id\":\"null-test\"}", &coordinator),
                 SWIMRAFT_OK);
    if (coordinator == NULL) {
        return;
    }
    CHECK_RESULT(swimraft_coordinator_status_json(coordinator, NULL), SWIMRAFT_NULL_ARGUMENT);
    CHECK_RESULT(swimraft_coordinator_alive_peers_json(coordinator, NULL),
                 SWIMRAFT_NULL_ARGUMENT);
    CHECK_RESULT(swimraft_coordinator_members_json(coordinator, NULL), SWIMRAFT_NULL_ARGUMENT);
    CHECK_RESULT(swimraft_coordinator_is_peer_alive(coordinator, NULL, &flag),
                 SWIMRAFT_NULL_ARGUMENT);
    CHECK(contains(swimraft_last_error_message(), "node_id"), "message does not name node_id");
    CHECK_RESULT(swimraft_coordinator_is_peer_alive(coordinator, "x", NULL),
                 SWIMRAFT_NULL_ARGUMENT);
    CHECK_RESULT(swimraft_coordinator_is_peer_alive(coordinator, "\xff\xfe", &flag),
                 SWIMRAFT_INVALID_UTF8);
    CHECK_RESULT(swimraft_coordinator_is_leader(coordinator, NULL), SWIMRAFT_NULL_ARGUMENT);
    CHECK_RESULT(swimraft_coordinator_leader_id(coordinator, NULL), SWIMRAFT_NULL_ARGUMENT);
    CHECK(flag, "is_peer_alive wrote its out-parameter on failure");

    /* Registering and removing a callback on a coordinator that never starts. */
    CHECK_RESULT(swimraft_coordinator_set_event_callback(coordinator, never_called, NULL),
                 SWIMRAFT_OK);
    CHECK_RESULT(swimraft_coordinator_set_event_callback(coordinator, NULL, NULL), SWIMRAFT_OK);

    /* A coordinator that never started: status says "created", no peers. */
    char *status = NULL;
    CHECK_RESULT(swimraft_coordinator_status_json(coordinator, &status), SWIMRAFT_OK);
    CHECK(contains(status, "\"lifecycle\":\"created\""), "status: %s", status);
    swimraft_string_free(status);
    CHECK_RESULT(swimraft_coordinator_free(coordinator), SWIMRAFT_OK);
}

static void test_bad_config(void) {
    swimraft_coordinator *out = NULL;

    CHECK_RESULT(swimraft_coordinator_new("{\"swim_port\":\"abc\"}", &out),
                 SWIMRAFT_INVALID_CONFIG);
    CHECK(contains(swimraft_last_error_message(), "swim_port"), "message does not name swim_port");
    CHECK(contains(swimraft_last_error_message(), "abc"), "message does not quote the value");

    CHECK_RESULT(swimraft_coordinator_new(
                     "{\"membership_mode\":\"swim\",\"swim_enabled\":false}", &out),
                 SWIMRAFT_INVALID_CONFIG);
    CHECK(contains(swimraft_last_error_message(), "membership_mode") &&
              contains(swimraft_last_error_message(), "swim_enabled"),
          "message does not name membership_mode and swim_enabled");

    CHECK_RESULT(swimraft_coordinator_new("{\"no_such_key\":1}", &out), SWIMRAFT_INVALID_CONFIG);
    CHECK(contains(swimraft_last_error_message(), "no_such_key"), "unknown key not named");

    CHECK_RESULT(swimraft_coordinator_new("{not json", &out), SWIMRAFT_INVALID_CONFIG);
    CHECK_RESULT(swimraft_coordinator_new("[1,2]", &out), SWIMRAFT_INVALID_CONFIG);
    CHECK_RESULT(swimraft_coordinator_new("{\"node_id\":\"\xff\"}", &out), SWIMRAFT_INVALID_UTF8);
    CHECK(out == NULL, "out was written on failure");
}

/* Calls on a parent's handle from a fork() child must fail fast, not hang. */
static void test_fork(swimraft_coordinator *parent_handle) {
    fflush(NULL);
    pid_t child = fork();
    if (child < 0) {
        CHECK(false, "fork failed");
        return;
    }
    if (child == 0) {
        char *json = NULL;
        int bad = 0;
        if (swimraft_coordinator_status_json(parent_handle, &json) != SWIMRAFT_FORKED) {
            bad |= 1;
        }
        if (!contains(swimraft_last_error_message(), "fork")) {
            bad |= 2;
        }
        swimraft_coordinator *fresh = NULL;
        if (swimraft_coordinator_new("{}", &fresh) != SWIMRAFT_FORKED) {
            bad |= 4;
        }
        if (swimraft_coordinator_stop(parent_handle) != SWIMRAFT_FORKED) {
            bad |= 8;
        }
        if (swimraft_coordinator_free(parent_handle) != SWIMRAFT_FORKED) {
            bad |= 16;
        }
        _exit(bad);
    }
    /* Bounded: the child exists to show that a forked process errors instead of hanging, so
     * a hang must fail this check, not stall the suite. */
    int status = 0;
    pid_t reaped = 0;
    for (int waited_ms = 0; reaped == 0 && waited_ms < 15000; waited_ms += POLL_STEP_MS) {
        reaped = waitpid(child, &status, WNOHANG);
        if (reaped == 0) {
            sleep_ms(POLL_STEP_MS);
        }
    }
    if (reaped == 0) {
        kill(child, SIGKILL);
        waitpid(child, &status, 0);
        CHECK(false, "fork child still running after 15 s (killed)");
        return;
    }
    CHECK(reaped == child, "waitpid failed");
    CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0,
          "fork child: status %d (bits: 1 status, 2 message, 4 new, 8 stop, 16 free)",
          WIFEXITED(status) ? WEXITSTATUS(status) : -1);
}

static void test_two_nodes(void) {
    char dir_a[] = "/tmp/swimraft-c-test-a-XXXXXX";
    char dir_b[] = "/tmp/swimraft-c-test-b-XXXXXX";
    if (mkdtemp(dir_a) == NULL || mkdtemp(dir_b) == NULL) {
        CHECK(false, "mkdtemp failed");
        return;
    }
    char cluster[64];
    snprintf(cluster, sizeof cluster, "c-test-%ld", (long)getpid());

    struct event_counter events_a, events_b;
    atomic_init(&events_a.events, 0);
    atomic_init(&events_a.member_events, 0);
    atomic_init(&events_b.events, 0);
    atomic_init(&events_b.member_events, 0);

    swimraft_coordinator *a = make_node("c-node-a", cluster, dir_a, NULL);
    if (a == NULL) {
        goto cleanup_dirs;
    }
    CHECK_RESULT(swimraft_coordinator_set_event_callback(a, on_event, &events_a), SWIMRAFT_OK);
    CHECK_RESULT(swimraft_coordinator_start(a), SWIMRAFT_OK);
    CHECK_RESULT(swimraft_coordinator_start(a), SWIMRAFT_OK); /* no-op while running */

    char *status = NULL;
    char seed[128] = "";
    CHECK_RESULT(swimraft_coordinator_status_json(a, &status), SWIMRAFT_OK);
    CHECK(contains(status, "\"lifecycle\":\"running\""), "status of a: %s", status);
    CHECK(status != NULL && json_string_field(status, "advertised_addr", seed, sizeof seed),
          "no swim.advertised_addr in %s", status);
    CHECK(strncmp(seed, "127.0.0.1:", 10) == 0, "advertised address %s", seed);
    swimraft_string_free(status);

    swimraft_coordinator *b = make_node("c-node-b", cluster, dir_b, seed);
    if (b == NULL) {
        swimraft_coordinator_free(a);
        goto cleanup_dirs;
    }
    CHECK_RESULT(swimraft_coordinator_set_event_callback(b, on_event, &events_b), SWIMRAFT_OK);
    CHECK_RESULT(swimraft_coordinator_start(b), SWIMRAFT_OK);

    /* Bounded wait: each node sees the other, and a membership event has arrived. */
    int waited = 0;
    bool converged = false;
    while (waited <= POLL_LIMIT_MS) {
        if (sees_peer(a, "c-node-b") && sees_peer(b, "c-node-a") &&
            atomic_load(&events_a.member_events) > 0 && atomic_load(&events_b.member_events) > 0) {
            converged = true;
            break;
        }
        sleep_ms(POLL_STEP_MS);
        waited += POLL_STEP_MS;
    }
    CHECK(converged, "no convergence within %d ms (events a=%d b=%d)", POLL_LIMIT_MS,
          atomic_load(&events_a.events), atomic_load(&events_b.events));
    printf("# two nodes converged after %d ms; events a=%d b=%d\n", waited,
           atomic_load(&events_a.events), atomic_load(&events_b.events));

    bool alive = false;
    CHECK_RESULT(swimraft_coordinator_is_peer_alive(a, "c-node-b", &alive), SWIMRAFT_OK);
    CHECK(alive, "a does not see c-node-b alive");
    alive = false;
    CHECK_RESULT(swimraft_coordinator_is_peer_alive(b, "c-node-a", &alive), SWIMRAFT_OK);
    CHECK(alive, "b does not see c-node-a alive");
    alive = true;
    CHECK_RESULT(swimraft_coordinator_is_peer_alive(a, "nobody", &alive), SWIMRAFT_OK);
    CHECK(!alive, "a sees a node that does not exist");
    alive = true;
    CHECK_RESULT(swimraft_coordinator_is_peer_alive(a, "c-node-a", &alive), SWIMRAFT_OK);
    CHECK(!alive, "a counts itself as a peer");

    char *members = NULL;
    CHECK_RESULT(swimraft_coordinator_members_json(a, &members), SWIMRAFT_OK);
    CHECK(members != NULL && members[0] == '[', "members is not an array: %s", members);
    CHECK(contains(members, "\"node_id\":\"c-node-b\"") && contains(members, "\"state\":\"alive\""),
          "members of a: %s", members);
    swimraft_string_free(members);

    /* These two nodes run SWIM only (no Raft configured): never a leader, no leader id. */
    bool leader = true;
    CHECK_RESULT(swimraft_coordinator_is_leader(a, &leader), SWIMRAFT_OK);
    CHECK(!leader, "a claims to lead without consensus");
    char *leader_id = NULL;
    CHECK_RESULT(swimraft_coordinator_leader_id(a, &leader_id), SWIMRAFT_OK);
    CHECK(leader_id != NULL && leader_id[0] == '\0', "leader id \"%s\"", leader_id);
    swimraft_string_free(leader_id);

    test_fork(a);

    /* Unregistering: no further calls into on_event for b. */
    CHECK_RESULT(swimraft_coordinator_set_event_callback(b, NULL, NULL), SWIMRAFT_OK);
    int b_before = atomic_load(&events_b.events);

    /* Graceful stop of b: a sees it go (left), through the callback too. */
    int a_before = atomic_load(&events_a.member_events);
    CHECK_RESULT(swimraft_coordinator_stop(b), SWIMRAFT_OK);
    CHECK_RESULT(swimraft_coordinator_stop(b), SWIMRAFT_OK); /* idempotent */
    waited = 0;
    while (waited <= POLL_LIMIT_MS && sees_peer(a, "c-node-b")) {
        sleep_ms(POLL_STEP_MS);
        waited += POLL_STEP_MS;
    }
    CHECK(!sees_peer(a, "c-node-b"), "a still sees c-node-b %d ms after it stopped", waited);
    waited = 0;
    while (waited <= POLL_LIMIT_MS && atomic_load(&events_a.member_events) == a_before) {
        sleep_ms(POLL_STEP_MS);
        waited += POLL_STEP_MS;
    }
    CHECK(atomic_load(&events_a.member_events) > a_before, "no event on a for b leaving");
    CHECK(atomic_load(&events_b.events) == b_before, "b's removed callback was still called");

    CHECK_RESULT(swimraft_coordinator_stop(a), SWIMRAFT_OK);
    CHECK_RESULT(swimraft_coordinator_status_json(a, &status), SWIMRAFT_OK);
    CHECK(contains(status, "\"lifecycle\":\"stopped\""), "status of a after stop: %s", status);
    swimraft_string_free(status);

    /* A stopped coordinator does not start again. */
    CHECK_RESULT(swimraft_coordinator_start(a), SWIMRAFT_SHUTDOWN);
    CHECK(contains(swimraft_last_error_message(), "stopped"), "shutdown message");

    /* Queries keep answering after stop, with no peers (b was a live peer of a before). */
    char *after = NULL;
    CHECK_RESULT(swimraft_coordinator_alive_peers_json(a, &after), SWIMRAFT_OK);
    CHECK(after != NULL && strcmp(after, "[]") == 0, "peers of a stopped node: %s", after);
    swimraft_string_free(after);
    after = NULL;
    CHECK_RESULT(swimraft_coordinator_members_json(a, &after), SWIMRAFT_OK);
    CHECK(after != NULL && strcmp(after, "[]") == 0, "members of a stopped node: %s", after);
    swimraft_string_free(after);
    after = NULL;
    bool alive_after = true;
    CHECK_RESULT(swimraft_coordinator_is_peer_alive(a, "c-node-b", &alive_after), SWIMRAFT_OK);
    CHECK(!alive_after, "a stopped node calls c-node-b alive");
    bool leader_after = true;
    CHECK_RESULT(swimraft_coordinator_is_leader(a, &leader_after), SWIMRAFT_OK);
    CHECK(!leader_after, "a stopped node claims to lead");
    CHECK_RESULT(swimraft_coordinator_leader_id(a, &after), SWIMRAFT_OK);
    CHECK(after != NULL && after[0] == '\0', "leader id of a stopped node: %s", after);
    swimraft_string_free(after);
    /* A callback set after stop is accepted and simply never called; then removed. */
    int a_events = atomic_load(&events_a.events);
    CHECK_RESULT(swimraft_coordinator_set_event_callback(a, on_event, &events_a), SWIMRAFT_OK);
    sleep_ms(POLL_STEP_MS);
    CHECK_RESULT(swimraft_coordinator_set_event_callback(a, NULL, NULL), SWIMRAFT_OK);
    CHECK(atomic_load(&events_a.events) == a_events, "events after stop");

    CHECK_RESULT(swimraft_coordinator_free(b), SWIMRAFT_OK);
    CHECK_RESULT(swimraft_coordinator_free(a), SWIMRAFT_OK);

cleanup_dirs:
    remove_dir(dir_a);
    remove_dir(dir_b);
}

/* A coordinator freed while running, with a callback registered: _free stops it and joins. */
static void test_free_running(void) {
    char dir[] = "/tmp/swimraft-c-test-f-XXXXXX";
    if (mkdtemp(dir) == NULL) {
        CHECK(false, "mkdtemp failed");
        return;
    }
    struct event_counter counter;
    atomic_init(&counter.events, 0);
    atomic_init(&counter.member_events, 0);
    swimraft_coordinator *c = make_node("c-node-f", "c-test-free", dir, NULL);
    if (c != NULL) {
        CHECK_RESULT(swimraft_coordinator_set_event_callback(c, on_event, &counter), SWIMRAFT_OK);
        CHECK_RESULT(swimraft_coordinator_start(c), SWIMRAFT_OK);
        CHECK_RESULT(swimraft_coordinator_free(c), SWIMRAFT_OK);
    }
    remove_dir(dir);
}

/* The replicated state through swimraft_coordinator_execute on a single-node Raft. */
static void test_raft_execute(void) {
    char dir_template[] = "/tmp/swimraft-c-raft-XXXXXX";
    char *dir = mkdtemp(dir_template);
    CHECK(dir != NULL, "mkdtemp failed");
    if (dir == NULL) {
        return;
    }
    char config[512];
    snprintf(config, sizeof config,
             "{\"node_id\":\"c-raft\",\"raft_enabled\":true,\"consensus_mode\":\"raft\","
             "\"bind_host\":\"127.0.0.1\",\"advertise_host\":\"127.0.0.1\",\"raft_port\":0,"
             "\"preset\":\"local\",\"cluster_name\":\"c-raft\",\"data_dir\":\"%s\"}",
             dir);
    swimraft_coordinator *c = NULL;
    CHECK_RESULT(swimraft_coordinator_new(config, &c), SWIMRAFT_OK);
    if (c == NULL) {
        return;
    }
    char *out = NULL;
    /* Before start: not applied, clearly. */
    CHECK_RESULT(swimraft_coordinator_execute(c, "{\"read\":{\"query\":\"work_stats\"}}", 0, &out),
                 SWIMRAFT_UNAVAILABLE);
    CHECK_RESULT(swimraft_coordinator_start(c), SWIMRAFT_OK);
    bool leader = false;
    for (int waited = 0; waited < POLL_LIMIT_MS && !leader; waited += POLL_STEP_MS) {
        swimraft_coordinator_is_leader(c, &leader);
        if (!leader) {
            sleep_ms(POLL_STEP_MS);
        }
    }
    CHECK(leader, "the single node never became leader");
    char *leader_id = NULL;
    CHECK_RESULT(swimraft_coordinator_leader_id(c, &leader_id), SWIMRAFT_OK);
    CHECK(leader_id != NULL && strcmp(leader_id, "c-raft") == 0, "leader id %s", leader_id);
    swimraft_string_free(leader_id);

    const char *add = "{\"write\":{\"command\":{\"work_add\":{\"item\":{\"work_id\":\"w1\","
                      "\"work_type\":\"selfplay\"},\"force\":false}}}}";
    CHECK_RESULT(swimraft_coordinator_execute(c, add, 2000, &out), SWIMRAFT_OK);
    CHECK(out != NULL && contains(out, "\"work_id\":\"w1\""), "add answered %s", out);
    swimraft_string_free(out);
    out = NULL;
    CHECK_RESULT(swimraft_coordinator_execute(c, add, 0, &out), SWIMRAFT_INVALID_ARGUMENT);
    CHECK(out == NULL, "out written on failure");
    CHECK(contains(swimraft_last_error_message(), "duplicate"), "message: %s",
          swimraft_last_error_message());
    CHECK_RESULT(swimraft_coordinator_execute(
                     c, "{\"read\":{\"query\":{\"work_get\":{\"work_id\":\"w1\"}}}}", 0, &out),
                 SWIMRAFT_OK);
    CHECK(out != NULL && contains(out, "\"status\":\"pending\""), "work_get answered %s", out);
    swimraft_string_free(out);
    out = NULL;
    CHECK_RESULT(swimraft_coordinator_execute(
                     c, "{\"write\":{\"command\":{\"lock_acquire\":{\"name\":\"l\","
                        "\"holder\":\"h\",\"ttl_us\":1000000}}}}", 0, &out),
                 SWIMRAFT_OK);
    CHECK(out != NULL && contains(out, "\"token\":"), "lock answered %s", out);
    swimraft_string_free(out);
    out = NULL;
    CHECK_RESULT(swimraft_coordinator_execute(c, "{\"read\":{\"query\":{\"kv_get\":{\"key\":\"none\"}}}}",
                                              0, &out),
                 SWIMRAFT_OK);
    CHECK(out != NULL && strcmp(out, "null") == 0, "missing key answered %s", out);
    swimraft_string_free(out);
    out = NULL;
    CHECK_RESULT(swimraft_coordinator_execute(c, "{\"explode\":{}}", 0, &out),
                 SWIMRAFT_INVALID_ARGUMENT);
    CHECK_RESULT(swimraft_coordinator_execute(c, "not json", 0, &out), SWIMRAFT_INVALID_ARGUMENT);
    CHECK_RESULT(swimraft_coordinator_execute(c, "{\"write\":\"\xff\"}", 0, &out),
                 SWIMRAFT_INVALID_UTF8);
    CHECK_RESULT(swimraft_coordinator_execute(c, NULL, 0, &out), SWIMRAFT_NULL_ARGUMENT);
    CHECK_RESULT(swimraft_coordinator_execute(c, add, 0, NULL), SWIMRAFT_NULL_ARGUMENT);
    CHECK_RESULT(swimraft_coordinator_execute(NULL, add, 0, &out), SWIMRAFT_NULL_ARGUMENT);
    CHECK_RESULT(swimraft_coordinator_stop(c), SWIMRAFT_OK);
    CHECK_RESULT(swimraft_coordinator_execute(c, add, 0, &out), SWIMRAFT_SHUTDOWN);
    CHECK_RESULT(swimraft_coordinator_free(c), SWIMRAFT_OK);
    remove_dir(dir);
}

int main(void) {
    printf("# libswimraft %s\n", swimraft_version());
    test_version_and_last_error();
    test_null_arguments();
    test_bad_config();
    test_two_nodes();
    test_free_running();
    test_raft_execute();
    printf("%d passed, %d failed\n", passed, failed);
    return failed == 0 ? 0 : 1;
}
