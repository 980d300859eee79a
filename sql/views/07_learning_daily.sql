-- What the error bound's learning costs, by tenant and UTC day (docs/error-bound.md):
-- explored_requests are would-be hits the bound sent to the model to label the candidate,
-- explored_cost_usd what they cost upstream (a hit would have cost nothing), labels the
-- labelled decisions gathered (from the judge and from feedback), wrong_labels those that
-- said the stored answer would have been wrong, judge_calls and judge_cost_usd the calls the
-- llm answer judge made to label explored requests, and what they cost (each is a ledger row
-- of its own, a bypass whose metadata names the request judged).
CREATE OR REPLACE VIEW analytics.learning_daily AS
WITH explored AS (
    SELECT
        tenant_id,
        (created_at AT TIME ZONE 'UTC')::date AS day,
        count(*) AS requests,
        count(*) FILTER (WHERE explored) AS explored_requests,
        coalesce(sum(cost_usd) FILTER (WHERE explored), 0) AS explored_cost_usd,
        count(*) FILTER (WHERE metadata ? 'answer_judge') AS judge_calls,
        coalesce(sum(cost_usd) FILTER (WHERE metadata ? 'answer_judge'), 0) AS judge_cost_usd
    FROM public.ledger
    GROUP BY 1, 2
), labels AS (
    SELECT
        tenant_id,
        (created_at AT TIME ZONE 'UTC')::date AS day,
        count(*) AS labels,
        count(*) FILTER (WHERE NOT correct) AS wrong_labels
    FROM public.cache_labels
    GROUP BY 1, 2
)
SELECT
    t.id AS tenant_id,
    t.name AS tenant_name,
    day,
    coalesce(e.requests, 0) AS requests,
    coalesce(e.explored_requests, 0) AS explored_requests,
    coalesce(e.explored_cost_usd, 0) AS explored_cost_usd,
    coalesce(l.labels, 0) AS labels,
    coalesce(l.wrong_labels, 0) AS wrong_labels,
    coalesce(e.judge_calls, 0) AS judge_calls,
    coalesce(e.judge_cost_usd, 0) AS judge_cost_usd
FROM explored AS e
FULL JOIN labels AS l USING (tenant_id, day)
JOIN public.tenants AS t ON t.id = tenant_id;
