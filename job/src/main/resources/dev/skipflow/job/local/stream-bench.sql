-- `./skipflow bench --stream --sql`: examples/sql/prompts.sql with the bench's settings, so the SQL path runs the
-- same model, batch, in-flight limit and engine threads as the DataStream job it is compared with.
SET 'table.exec.async-ml-predict.max-concurrent-operations' = '${max-in-flight}';
SET 'table.exec.async-ml-predict.output-mode' = 'ALLOW_UNORDERED';
SET 'table.exec.async-ml-predict.timeout' = '10 min';

CREATE TABLE prompts (
  id STRING,
  prompt STRING
) WITH (
  'connector' = 'kafka',
  'topic' = '${prompts-topic}',
  'properties.bootstrap.servers' = '${bootstrap-servers}',
  'properties.group.id' = '${prompts-topic}',
  'properties.isolation.level' = 'read_committed',
  'scan.startup.mode' = 'earliest-offset',
  'format' = 'json'
);

CREATE TABLE completions (
  id STRING,
  `text` STRING,
  finishReason STRING,
  promptTokens INT,
  completionTokens INT,
  savings ROW<savedFraction DOUBLE, tokenBlocksSkipped BIGINT, earlyExitTokens BIGINT>,
  error STRING
) WITH (
  'connector' = 'kafka',
  'topic' = '${completions-topic}',
  'properties.bootstrap.servers' = '${bootstrap-servers}',
  'key.format' = 'raw',
  'key.fields' = 'id',
  'value.format' = 'json',
  'value.json.encode.ignore-null-fields' = 'true',
  'sink.delivery-guarantee' = 'exactly-once',
  'sink.transactional-id-prefix' = '${completions-topic}',
  'properties.transaction.timeout.ms' = '600000'
);

CREATE TEMPORARY MODEL bench
INPUT (prompt STRING)
OUTPUT (completion STRING, finish_reason STRING, prompt_tokens INT, completion_tokens INT, saved_fraction DOUBLE,
        token_blocks_skipped BIGINT, early_exit_tokens BIGINT, error STRING)
WITH (
  'provider' = 'skipflow',
  'model' = '${model}',
  'tokenizer' = '${tokenizer}',
  'device' = '${device}',
  'max-tokens' = '${max-tokens}',
  'max-batch' = '${max-batch}',
  'engine-threads' = '${engine-threads}'
);

INSERT INTO completions
SELECT id, completion, finish_reason, prompt_tokens, completion_tokens,
       ROW(saved_fraction, token_blocks_skipped, early_exit_tokens), error
FROM ML_PREDICT(TABLE prompts, MODEL bench, DESCRIPTOR(prompt));
