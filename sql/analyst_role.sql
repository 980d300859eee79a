-- Read-only access to the analytics views for analysts. Run once per database, as a role that
-- may create roles (e.g. postgres), connected to Déjà's database; safe to run again. Then:
--   CREATE ROLE alice LOGIN PASSWORD '...' IN ROLE deja_analyst;
--   ALTER ROLE alice IN DATABASE deja SET deja.system = 'on';  -- see every tenant
-- Members read analytics.* only: no grant on the tables, so no prompt or response text.
DO $$ BEGIN
  IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'deja_analyst') THEN
    CREATE ROLE deja_analyst NOLOGIN;
  END IF;
END $$;
GRANT USAGE ON SCHEMA analytics TO deja_analyst;
GRANT SELECT ON ALL TABLES IN SCHEMA analytics TO deja_analyst;
