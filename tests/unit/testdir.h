/*
 * testdir.h — one temporary directory per unit-test program, for tests
 * that open real stores on disk: each test makes its own directory in it.
 */
#ifndef PETREL_TESTDIR_H
#define PETREL_TESTDIR_H

extern char testdir[];  /* the directory, once testdir_setup has run */

/* cmocka group setup and teardown: makes the directory (and keeps the
 * logs to errors), removes it (empty by then). */
int testdir_setup(void **state);
int testdir_teardown(void **state);

/* Removes dir and the files in it (a store: the database, -wal, -shm). */
void testdir_rm(const char *dir);

#endif
