-- Hit rate and requests per tenant over the last 7 UTC days, best first.
SELECT tenant_name,
       sum(requests) AS requests,
       sum(hits) AS hits,
       round(sum(hits)::numeric / nullif(sum(hits) + sum(misses), 0), 4) AS hit_rate
FROM analytics.hit_rate_daily
WHERE day > (now() AT TIME ZONE 'UTC')::date - 7
GROUP BY tenant_name
ORDER BY hit_rate DESC NULLS LAST, requests DESC;
