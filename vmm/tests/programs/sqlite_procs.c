/* Four processes writing one SQLite database in WAL mode at once, each
 * with its own connection: the WAL index is a shared mapping of the
 * -shm file that every process maps on its own, under fcntl locks. */
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>
static void die(sqlite3 *db, const char *what) { fprintf(stderr, "%s: %s\n", what, sqlite3_errmsg(db)); exit(1); }
static void exec(sqlite3 *db, const char *sql) { char *e = 0; if (sqlite3_exec(db, sql, 0, 0, &e) != SQLITE_OK) { fprintf(stderr, "%s: %s\n", sql, e); exit(1); } }
int main(int argc, char **argv) {
    const char *path = argc > 1 ? argv[1] : "mp.db";
    unlink(path);
    char aux[512]; snprintf(aux, sizeof aux, "%s-wal", path); unlink(aux); snprintf(aux, sizeof aux, "%s-shm", path); unlink(aux);
    sqlite3 *db;
    if (sqlite3_open(path, &db) != SQLITE_OK) die(db, "open");
    exec(db, "PRAGMA journal_mode=WAL; CREATE TABLE t(worker INTEGER, n INTEGER);");
    sqlite3_close(db);
    int workers = 4, rows = 300;
    for (int w = 0; w < workers; w++) {
        if (fork() == 0) {
            sqlite3 *d;
            if (sqlite3_open(path, &d) != SQLITE_OK) die(d, "child open");
            sqlite3_busy_timeout(d, 20000);
            for (int i = 0; i < rows; i++) {
                char sql[128];
                snprintf(sql, sizeof sql, "INSERT INTO t VALUES(%d, %d);", w, i);
                exec(d, sql);
                if (i % 50 == 0) {
                    sqlite3_stmt *st; sqlite3_prepare_v2(d, "SELECT count(*) FROM t", -1, &st, 0);
                    if (sqlite3_step(st) != SQLITE_ROW) die(d, "count"); sqlite3_finalize(st);
                }
            }
            sqlite3_close(d);
            _exit(0);
        }
    }
    int bad = 0;
    for (int w = 0; w < workers; w++) { int st; wait(&st); bad += !(WIFEXITED(st) && WEXITSTATUS(st) == 0); }
    if (sqlite3_open(path, &db) != SQLITE_OK) die(db, "reopen");
    sqlite3_stmt *st;
    sqlite3_prepare_v2(db, "SELECT count(*), sum(n), count(DISTINCT worker) FROM t", -1, &st, 0);
    sqlite3_step(st);
    printf("workers failed %d; rows %d sum %lld workers %d\n", bad, sqlite3_column_int(st, 0), sqlite3_column_int64(st, 1), sqlite3_column_int(st, 2));
    sqlite3_finalize(st);
    sqlite3_prepare_v2(db, "PRAGMA integrity_check", -1, &st, 0);
    sqlite3_step(st);
    printf("integrity: %s\n", sqlite3_column_text(st, 0));
    sqlite3_finalize(st);
    sqlite3_close(db);
    return 0;
}
