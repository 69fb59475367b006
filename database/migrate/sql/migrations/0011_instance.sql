-- Source side: this database's identity as a source, a random id sent with
-- every chunk, so a target tells two instances that use one database.name
-- apart. It travels with the database (a dump, a restore): the same
-- source's data keeps its identity.
CREATE TABLE teleport.instance (
    id  uuid PRIMARY KEY DEFAULT pg_catalog.gen_random_uuid(),
    one boolean NOT NULL DEFAULT true UNIQUE CHECK (one)
);
INSERT INTO teleport.instance DEFAULT VALUES;

-- Target side: the instance a source's chunks come from, taken from the
-- first chunk that names one.
ALTER TABLE teleport.source ADD COLUMN instance uuid;
