-- Up Migration
-- This migration once redefined gateway_apply_callback (a failed callback for an init order records
-- the acceptance it implies). It lives in sql/balance/functions/ now (see sql/README.md).
select 1;
