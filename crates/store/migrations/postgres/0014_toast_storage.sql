-- How PostgreSQL keeps the large values intake writes (tests/schema_parity.rs compares
-- tables, columns, types, indexes and constraints; storage is PostgreSQL's alone, so
-- the SQLite twin of this file changes nothing).
--
-- The ledger's raw mail is zstd-compressed by the store already: EXTERNAL keeps it out
-- of line without PostgreSQL trying (and failing) to compress it again with pglz,
-- which was a fifth of the server's CPU in the import bench.
ALTER TABLE intake ALTER COLUMN raw SET STORAGE EXTERNAL;

-- Texts of entries compress with lz4 (PostgreSQL 14 and later, when built with it,
-- as Debian's and the official packages are): several times faster than pglz, at a
-- ratio close to it. A server built without lz4 keeps pglz.
DO $$
BEGIN
    ALTER TABLE entries ALTER COLUMN body_text SET COMPRESSION lz4;
    ALTER TABLE entries ALTER COLUMN body_full SET COMPRESSION lz4;
    ALTER TABLE entries ALTER COLUMN body_html SET COMPRESSION lz4;
EXCEPTION WHEN feature_not_supported THEN
    RAISE NOTICE 'this PostgreSQL has no lz4: entries keep pglz';
END
$$;
