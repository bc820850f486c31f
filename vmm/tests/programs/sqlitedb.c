/* SQLite on the file system it is given: a database of 20,000 rows with
 * an index, built in one transaction and changed in small ones (each a
 * rollback journal written, fsynced and deleted), then queried; the
 * database is closed, opened again and checked. Prints only results.
 * `sqlitedb FILE wal` does the same in WAL mode (the write-ahead log, and
 * its index in a shared mapping of FILE-shm). */
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static sqlite3 *db;

static void must(int rc, const char *what) {
    if (rc != SQLITE_OK && rc != SQLITE_DONE && rc != SQLITE_ROW) {
        printf("%s: %s\n", what, sqlite3_errmsg(db));
        exit(1);
    }
}

static void exec(const char *sql) {
    char *msg = 0;
    if (sqlite3_exec(db, sql, 0, 0, &msg) != SQLITE_OK) {
        printf("%s: %s\n", sql, msg);
        exit(1);
    }
}

static int show(void *unused, int n, char **values, char **names) {
    (void)unused;
    for (int i = 0; i < n; i++)
        printf("%s%s=%s", i ? " " : "", names[i], values[i] ? values[i] : "NULL");
    printf("\n");
    return 0;
}

static void query(const char *sql) {
    char *msg = 0;
    if (sqlite3_exec(db, sql, show, 0, &msg) != SQLITE_OK) {
        printf("%s: %s\n", sql, msg);
        exit(1);
    }
}

int main(int argc, char **argv) {
    if (argc < 2) {
        fprintf(stderr, "usage: sqlitedb FILE\n");
        return 2;
    }
    must(sqlite3_open(argv[1], &db), "open");
    int wal = argc > 2 && !strcmp(argv[2], "wal");
    exec(wal ? "PRAGMA journal_mode=WAL" : "PRAGMA journal_mode=DELETE");
    exec("CREATE TABLE t(id INTEGER PRIMARY KEY, k TEXT NOT NULL, v INTEGER, pad BLOB)");
    exec("CREATE INDEX t_k ON t(k)");
    exec("BEGIN");
    sqlite3_stmt *ins;
    must(sqlite3_prepare_v2(db, "INSERT INTO t(k, v, pad) VALUES(?, ?, zeroblob(?))", -1, &ins, 0), "prepare");
    unsigned x = 12345;
    for (int i = 0; i < 20000; i++) {
        char k[32];
        x = x * 1103515245 + 12345;
        snprintf(k, sizeof k, "key-%08x", x);
        sqlite3_bind_text(ins, 1, k, -1, SQLITE_TRANSIENT);
        sqlite3_bind_int(ins, 2, (int)(x % 1000));
        sqlite3_bind_int(ins, 3, (int)(x % 200));
        must(sqlite3_step(ins), "insert");
        sqlite3_reset(ins);
    }
    sqlite3_finalize(ins);
    exec("COMMIT");
    for (int i = 0; i < 20; i++) {
        char sql[128];
        snprintf(sql, sizeof sql, "UPDATE t SET v = v + %d WHERE id %% 97 = %d", i, i);
        exec(sql);
    }
    exec("DELETE FROM t WHERE v % 10 = 3");
    query("SELECT count(*) AS n, sum(v) AS total, min(k) AS first, max(k) AS last FROM t");
    query("SELECT v % 7 AS bucket, count(*) AS n FROM t GROUP BY bucket ORDER BY bucket");
    query("SELECT id, k, v FROM t WHERE k BETWEEN 'key-8000' AND 'key-8010' ORDER BY k");
    query("EXPLAIN QUERY PLAN SELECT * FROM t WHERE k = 'key-80000000'");
    sqlite3_close(db);
    must(sqlite3_open(argv[1], &db), "open again");
    query("PRAGMA integrity_check");
    query("SELECT count(*) AS n FROM t");
    sqlite3_close(db);
    return 0;
}
