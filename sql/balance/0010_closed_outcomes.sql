-- Up Migration
-- gateway_submit_result(s) return the outcome and the transition's outcome as two columns instead
-- of one concatenated string ('processing:changed'): a return type cannot be replaced in place, so
-- the old signatures go; sql/balance/functions/ defines the new ones.
drop function if exists gateway_submit_results(jsonb, int, int, int);
drop function if exists gateway_submit_result(uuid, text, int, jsonb, int, int, int, int, text);
