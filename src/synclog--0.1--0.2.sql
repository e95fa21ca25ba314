/*
 * synclog--0.1--0.2.sql
 *
 * From 0.1 to 0.2.  A fresh CREATE EXTENSION runs synclog--0.1.sql and
 * then this script, so a new database and an upgraded one have the same
 * objects by construction (test/t/006_upgrade.pl also compares them).
 *
 * The data stays where it is: every change below keeps the rows of a 0.1
 * database readable, and the hashes stored with them stay valid.
 */

-- complain if script is sourced in psql, rather than in ALTER EXTENSION
\echo Use "ALTER EXTENSION synclog UPDATE TO '0.2'" to load this file. \quit
