-- Up Migration
-- This migration once defined withdraw_create and account_credit. Every function now has one
-- current definition under sql/balance/functions/ (see sql/README.md); nothing is left here.
select 1;
