-- Baseline: helpers every later migration may use.

-- Sets updated_at on every UPDATE of a table that has the column
-- (CREATE TRIGGER … BEFORE UPDATE … EXECUTE FUNCTION touch_updated_at()).
CREATE OR REPLACE FUNCTION touch_updated_at() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    NEW.updated_at := now();
    RETURN NEW;
END;
$$;
