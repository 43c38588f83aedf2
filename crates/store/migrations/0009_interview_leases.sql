-- Several nodes share one database. A live interview is run by one node, which holds a lease on
-- it: its name (`owner_node`) and the instant the lease runs out (`lease_until`, Unix ms). The
-- owner renews its leases while its calls run; an interview still in progress whose lease ran
-- out belongs to a node that died, and another node finishes it. Interviews in progress before
-- this column existed have no lease and are taken over at once, as before.
ALTER TABLE interviews ADD COLUMN owner_node TEXT;
ALTER TABLE interviews ADD COLUMN lease_until BIGINT;
CREATE INDEX interviews_by_owner ON interviews (owner_node, status);
