'use strict';
// kafkajs 2.2 over a secured listener; --mode picks what to prove.
//
// roundtrip:    produce --count messages, consume them in group --group (subscribe
//               fromBeginning), commit the end offset and read it back with admin.fetchOffsets.
// auth-failure: the credentials are wrong: connecting must fail with
//               KafkaJSSASLAuthenticationError, and the broker must have answered
//               SaslAuthenticate with error code 58 (SASL_AUTHENTICATION_FAILED), which a
//               probe on kafkajs's SaslAuthenticate response parser records (kafkajs keeps
//               only the message, not the code, in the error it throws).
//
// Security options, as every security script takes them: --security-protocol, --sasl-mechanism,
// --username, --password, --ca-file, --cert-file, --key-file.

const fs = require('fs');

// The probe: installed before kafkajs loads these modules, so kafkajs calls the wrapped parse.
const saslAuthenticateErrorCodes = [];
for (const version of ['v0', 'v1']) {
  // eslint-disable-next-line global-require, import/no-dynamic-require
  const response = require(`kafkajs/src/protocol/requests/saslAuthenticate/${version}/response`);
  const parse = response.parse;
  response.parse = async (data) => {
    saslAuthenticateErrorCodes.push(data.errorCode);
    return parse(data);
  };
}

const { Kafka, logLevel, Partitioners } = require('kafkajs');
const {
  check, fail, parseArgs, runMain, sleep, waitFor,
} = require('./common');

// A kafkajs client with the security the options describe, short timeouts and few retries.
function makeSecureKafka(args, clientId, retries = 5) {
  const config = {
    clientId,
    brokers: [args.bootstrap],
    logLevel: logLevel.NOTHING,
    connectionTimeout: 10000,
    authenticationTimeout: 10000,
    requestTimeout: 10000,
    retry: { initialRetryTime: 100, maxRetryTime: 2000, retries },
  };
  const protocol = args['security-protocol'] || 'PLAINTEXT';
  if (protocol === 'SSL' || protocol === 'SASL_SSL') {
    config.ssl = { ca: [fs.readFileSync(args['ca-file'])] };
    if (args['cert-file']) {
      config.ssl.cert = fs.readFileSync(args['cert-file']);
      config.ssl.key = fs.readFileSync(args['key-file']);
    }
  }
  if (protocol === 'SASL_PLAINTEXT' || protocol === 'SASL_SSL') {
    config.sasl = {
      mechanism: args['sasl-mechanism'].toLowerCase(),
      username: args.username,
      password: args.password,
    };
  }
  return new Kafka(config);
}

function messages(topic, count) {
  return Array.from({ length: count }, (_, index) => ({
    key: `${topic}-key-${index}`,
    value: `${topic}-value-${index}`,
    partition: 0,
  }));
}

async function roundtrip(args) {
  const { topic, group } = args;
  const count = Number(args.count);
  const kafka = makeSecureKafka(args, 'security-kafkajs');
  const admin = kafka.admin();
  await admin.connect();
  await admin.createTopics({ topics: [{ topic, numPartitions: 1 }], waitForLeaders: true });

  const producer = kafka.producer({ createPartitioner: Partitioners.DefaultPartitioner });
  await producer.connect();
  const [result] = await producer.send({ topic, messages: messages(topic, count) });
  check(result.errorCode === 0 && Number(result.baseOffset) === 0,
    `produce answered ${JSON.stringify(result)}`);
  await producer.disconnect();
  console.log(`produced ${count} messages to ${topic} over ${args['security-protocol'] || 'PLAINTEXT'}`);

  const consumer = kafka.consumer({
    groupId: group, sessionTimeout: 10000, rebalanceTimeout: 10000, heartbeatInterval: 1000,
    maxWaitTimeInMs: 500,
  });
  let joined = false;
  consumer.on(consumer.events.GROUP_JOIN, () => { joined = true; });
  consumer.on(consumer.events.CRASH, (event) => fail(`consumer crashed: ${event.payload.error}`));
  const received = [];
  await consumer.connect();
  await consumer.subscribe({ topic, fromBeginning: true });
  await consumer.run({
    autoCommit: false,
    eachMessage: async ({ message }) => {
      received.push([message.key.toString(), message.value.toString()]);
    },
  });
  await waitFor(() => received.length >= count, 30000,
    () => `${count} messages (have ${received.length}, joined ${joined})`);
  check(joined, 'received messages without joining the group');
  const expected = messages(topic, count).map((m) => [m.key, m.value]);
  check(JSON.stringify(received) === JSON.stringify(expected),
    () => `received ${JSON.stringify(received.slice(0, 3))}...`);
  await consumer.commitOffsets([{ topic, partition: 0, offset: String(count) }]);
  await consumer.disconnect();

  const [offsets] = await admin.fetchOffsets({ groupId: group, topics: [topic] });
  const committed = offsets.partitions.find((p) => p.partition === 0);
  check(committed && Number(committed.offset) === count,
    `fetchOffsets gives ${JSON.stringify(offsets)}, expected ${count}`);
  await admin.disconnect();
  console.log(`group ${group} consumed ${count} messages and committed offset ${count}`);
}

async function authFailure(args) {
  const kafka = makeSecureKafka(args, 'security-kafkajs-bad', 0);
  const admin = kafka.admin();
  try {
    await admin.connect();
    await admin.listTopics();
  } catch (error) {
    check(error.name === 'KafkaJSSASLAuthenticationError',
      `expected KafkaJSSASLAuthenticationError, got ${error.name}: ${error.message}`);
    check(saslAuthenticateErrorCodes.includes(58),
      `SaslAuthenticate error codes seen: ${JSON.stringify(saslAuthenticateErrorCodes)}, ` +
      `expected 58 (SASL_AUTHENTICATION_FAILED); kafkajs said ${error.message}`);
    console.log(`refused as expected: ${error.name}: ${error.message}`);
    await admin.disconnect();
    await sleep(10);
    return;
  }
  fail(`listed topics over ${args['security-protocol']} with wrong credentials`);
}

runMain(async () => {
  const args = parseArgs({ topic: 'secure-kafkajs', group: 'secure-kafkajs-group', count: '20' });
  if (args.mode === 'roundtrip') {
    await roundtrip(args);
  } else if (args.mode === 'auth-failure') {
    await authFailure(args);
  } else {
    fail(`unknown --mode ${args.mode}`);
  }
});
