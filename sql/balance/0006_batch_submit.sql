-- Up Migration
-- This migration once defined gateway_submit_results (submission answers recorded in batches). It
-- lives in sql/balance/functions/ now (see sql/README.md); nothing is left here.
select 1;
