/*
 * testdir.h — one temporary directory per unit-test program, for tests
 * that open real stores on disk: each test makes its own directory in it.
 */
#ifndef PETREL_TESTDIR_H
#define PETREL_TESTDIR_H

#include <stdint.h>

extern char testdir[];  /* the directory, once testdir_setup has run */

/* cmocka group setup and teardown: makes the directory (and keeps the
 * logs to errors), removes it (empty by then). */
int testdir_setup(void **state);
int testdir_teardown(void **state);

/* Removes dir and the files in it (a store: the database, -wal, -shm). */
void testdir_rm(const char *dir);

/* The first column of the first row sql gives (-1: no row), read from the
 * database file through a connection of its own; fails the test on a bad
 * query. */
int64_t testdir_db_int(const char *db_path, const char *sql);

#endif
