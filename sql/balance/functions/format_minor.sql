-- Minor units (an exact integer: a bigint or a sum of bigints) as a decimal string with exactly the
-- currency's decimals, like formatMinor in app/money/money.ts: 12312 USD → '123.12', -5 → '-0.05'.
-- Text arithmetic on the integer's digits, never a float. The exponents mirror CURRENCY_EXPONENTS.
create or replace function format_minor(p_amount_minor numeric, p_currency text) returns text
language plpgsql immutable strict parallel safe as $$
declare
  v_exponent int := case p_currency when 'USD' then 2 when 'EUR' then 2 when 'GBP' then 2 when 'JPY' then 0 end;
  v_digits text;
begin
  if v_exponent is null then
    raise exception 'format_minor: unknown currency %', p_currency using errcode = 'invalid_parameter_value';
  end if;
  if p_amount_minor <> trunc(p_amount_minor) then
    raise exception 'format_minor: % is not a whole number of minor units', p_amount_minor
      using errcode = 'invalid_parameter_value';
  end if;
  v_digits := trunc(abs(p_amount_minor))::text;
  -- lpad truncates a longer string, so never ask for fewer characters than there are
  v_digits := lpad(v_digits, greatest(length(v_digits), v_exponent + 1), '0');
  return case when p_amount_minor < 0 then '-' else '' end
      || case when v_exponent = 0 then v_digits
              else left(v_digits, -v_exponent) || '.' || right(v_digits, v_exponent) end;
end $$;
