-- Prompts from Kafka, completions back to Kafka, generated in-process by ML_PREDICT on a skipflow model.
-- Run it with `./skipflow sql --file examples/sql/prompts.sql` (embedded broker, sample prompts, Ctrl-C to stop;
-- --once exits when they are answered). ${bootstrap-servers}, ${prompts-topic} and ${completions-topic} are
-- filled in by the command; add your own placeholders with --define NAME=VALUE.

-- ML_PREDICT keeps at most max-concurrent-operations rows in flight per slot (Flink's default is 10): let the
-- engine's batch fill. Unordered output lets a short completion overtake a long one.
SET 'table.exec.async-ml-predict.max-concurrent-operations' = '64';
SET 'table.exec.async-ml-predict.output-mode' = 'ALLOW_UNORDERED';
SET 'table.exec.async-ml-predict.timeout' = '10 min';

-- DESIGN §4's prompt records; other fields (maxTokens, temperature, ...) are the model's options here.
CREATE TABLE prompts (
  id STRING,
  prompt STRING
) WITH (
  'connector' = 'kafka',
  'topic' = '${prompts-topic}',
  'properties.bootstrap.servers' = '${bootstrap-servers}',
  'properties.group.id' = 'skipflow-sql',
  'scan.startup.mode' = 'group-offsets',
  'properties.auto.offset.reset' = 'earliest',
  'format' = 'json',
  'json.ignore-parse-errors' = 'true'
);

-- Keyed by id, in the shape of the DataStream job's completions; `error` is set (and the rest null) for a prompt
-- that could not be generated, e.g. one that does not fit the context.
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
  'sink.transactional-id-prefix' = 'skipflow-sql',
  'properties.transaction.timeout.ms' = '600000'
);

-- stories260K by default (the same lookup as --model); add 'router' and 'exit' artifact paths for adaptive compute.
CREATE TEMPORARY MODEL storyteller
INPUT (prompt STRING)
OUTPUT (completion STRING, finish_reason STRING, prompt_tokens INT, completion_tokens INT, saved_fraction DOUBLE,
        token_blocks_skipped BIGINT, early_exit_tokens BIGINT, error STRING)
WITH (
  'provider' = 'skipflow',
  'max-tokens' = '48',
  'max-batch' = '16'
);

INSERT INTO completions
SELECT id, completion, finish_reason, prompt_tokens, completion_tokens,
       ROW(saved_fraction, token_blocks_skipped, early_exit_tokens), error
FROM ML_PREDICT(TABLE prompts, MODEL storyteller, DESCRIPTOR(prompt));
