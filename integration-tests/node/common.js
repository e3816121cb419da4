'use strict';
// Helpers shared by the kafkajs test scripts: arguments, failing loudly, client setup.
//
// Every script takes --bootstrap HOST:PORT, prints what it did, and exits non-zero through
// fail() on any mismatch. Every client call has a timeout and the whole script is killed
// after SCRIPT_TIMEOUT_MS, so a broken broker fails the test instead of hanging it.

const { Kafka, logLevel, Partitioners } = require('kafkajs');

// The longest a whole script may run; the Rust harness kills it a little later.
const SCRIPT_TIMEOUT_MS = 60000;

// A fixed CreateTime far from "now", so a broker that overwrote it would be caught.
const BASE_TIMESTAMP_MS = 1600000000000;

// Exit status 2 once the script has run too long; unref'd so it never keeps node alive.
setTimeout(() => {
  console.error(`FAIL: script still running after ${SCRIPT_TIMEOUT_MS} ms`);
  process.exit(2);
}, SCRIPT_TIMEOUT_MS).unref();

process.on('unhandledRejection', (error) => fail(`unhandled rejection: ${describe(error)}`));

function fail(message) {
  console.error(`FAIL: ${message}`);
  process.exit(1);
}

function check(condition, message) {
  if (!condition) fail(typeof message === 'function' ? message() : message);
}

// An error with kafkajs's extra fields (type, code, retriable, cause) spelled out.
function describe(error) {
  if (!(error instanceof Error)) return String(error);
  const extra = ['type', 'code', 'retriable', 'broker']
    .filter((name) => error[name] !== undefined)
    .map((name) => `${name}=${error[name]}`);
  let text = `${error.name}: ${error.message}${extra.length ? ` (${extra.join(', ')})` : ''}`;
  if (error.cause) text += `\n  caused by ${describe(error.cause)}`;
  return `${text}\n${error.stack}`;
}

// Runs the async main function; any exception fails the script with its details.
function runMain(main) {
  main().then(
    () => process.exit(0),
    (error) => fail(describe(error)),
  );
}

// Parses `--name value` pairs; --bootstrap is required.
function parseArgs(defaults = {}) {
  const args = { ...defaults };
  const argv = process.argv.slice(2);
  for (let i = 0; i < argv.length; i += 2) {
    check(argv[i].startsWith('--') && i + 1 < argv.length, `bad arguments: ${argv.join(' ')}`);
    args[argv[i].slice(2)] = argv[i + 1];
  }
  check(args.bootstrap, 'missing --bootstrap HOST:PORT');
  return args;
}

// A kafkajs client with short timeouts and few retries, logging warnings and errors only.
function makeKafka(bootstrap, clientId) {
  return new Kafka({
    clientId,
    brokers: [bootstrap],
    logLevel: logLevel.WARN,
    connectionTimeout: 10000,
    requestTimeout: 10000,
    retry: { initialRetryTime: 100, maxRetryTime: 2000, retries: 5 },
  });
}

// A producer with kafkajs's defaults (acks -1, not idempotent) and its default partitioner
// named explicitly, which also silences kafkajs's partitioner-change warning.
function makeProducer(kafka) {
  return kafka.producer({ createPartitioner: Partitioners.DefaultPartitioner });
}

// A group consumer whose timeouts stay well inside the script's deadline.
function makeConsumer(kafka, groupId) {
  return kafka.consumer({
    groupId,
    sessionTimeout: 10000,
    rebalanceTimeout: 10000,
    heartbeatInterval: 1000,
    maxWaitTimeInMs: 500,
    retry: { initialRetryTime: 100, maxRetryTime: 2000, retries: 5 },
  });
}

// The key, value, headers and timestamp sent as message number `index`.
function expectedRecord(index, prefix) {
  return {
    key: `key-${index}`,
    // 100+ repeated bytes, so every batch compresses well.
    value: `${prefix}-${index}-${'x'.repeat(100 + (index % 97))}`,
    headers: { index: String(index), source: prefix },
    timestamp: String(BASE_TIMESTAMP_MS + index * 1000),
  };
}

function indexOfKey(key) {
  const text = key === null ? null : key.toString();
  check(text !== null && text.startsWith('key-'), `unexpected key ${text}`);
  return Number(text.slice(4));
}

// Checks one consumed kafkajs message against expectedRecord(); returns its index.
function verifyMessage(topic, partition, message, prefix) {
  const index = indexOfKey(message.key);
  const expected = expectedRecord(index, prefix);
  const where = `message ${index} at ${topic}/${partition}@${message.offset}`;
  const value = message.value === null ? null : message.value.toString();
  check(value === expected.value, `${where}: value ${value}, expected ${expected.value}`);
  const headers = {};
  for (const [name, header] of Object.entries(message.headers || {})) {
    headers[name] = Buffer.isBuffer(header) ? header.toString() : header;
  }
  check(
    JSON.stringify(headers) === JSON.stringify(expected.headers),
    () => `${where}: headers ${JSON.stringify(headers)}, expected ${JSON.stringify(expected.headers)}`,
  );
  check(
    message.timestamp === expected.timestamp,
    `${where}: timestamp ${message.timestamp}, expected CreateTime ${expected.timestamp}`,
  );
  return index;
}

// Resolves once `predicate()` holds, polling every 50 ms; rejects after `timeoutMs`. `what`
// is a description, or a function giving one (called on timeout, so it can show counts).
async function waitFor(predicate, timeoutMs, what) {
  const deadline = Date.now() + timeoutMs;
  while (!predicate()) {
    if (Date.now() > deadline) {
      const description = typeof what === 'function' ? what() : what;
      throw new Error(`timed out after ${timeoutMs} ms waiting for ${description}`);
    }
    await sleep(50);
  }
}

function sleep(ms) {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

// Starts `consumer` on `topic` from the beginning and collects every message it receives.
// Returns { received, joined }: `received` fills as messages arrive; `joined()` is true once
// the consumer joined its group. A consumer crash fails the script.
async function collect(consumer, topic) {
  const received = [];
  let joinedGroup = false;
  consumer.on(consumer.events.GROUP_JOIN, () => {
    joinedGroup = true;
  });
  consumer.on(consumer.events.CRASH, (event) => {
    fail(`consumer crashed: ${describe(event.payload.error)}`);
  });
  await consumer.connect();
  await consumer.subscribe({ topic, fromBeginning: true });
  await consumer.run({
    eachMessage: async ({ topic: from, partition, message }) => {
      received.push({ topic: from, partition, message });
    },
  });
  return { received, joined: () => joinedGroup };
}

module.exports = {
  BASE_TIMESTAMP_MS,
  check,
  collect,
  describe,
  expectedRecord,
  fail,
  indexOfKey,
  makeConsumer,
  makeKafka,
  makeProducer,
  parseArgs,
  runMain,
  sleep,
  verifyMessage,
  waitFor,
};
