-- 006_galera_keys.sql — every table gets a primary key.
--
-- Galera replicates rows by primary key: DELETE on a table without one is
-- unsupported, and such rows may apply in a different order on each node.
-- login_failures was the one table without a key.
ALTER TABLE login_failures ADD COLUMN id BIGINT NOT NULL AUTO_INCREMENT PRIMARY KEY FIRST;
