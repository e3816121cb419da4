"""Security options shared by the security_*.py scripts, and their settings for each client.

The Rust tests pass the same options to every script (see `ClientSecurity::script_args` in
integration-tests/src/security.rs): --security-protocol, and as the protocol needs
--sasl-mechanism, --username, --password, --ca-file, --cert-file, --key-file.
"""

import time

from common import CLIENT_TIMEOUT_S, check, fail, parser


def security_parser(description):
    """An argument parser with --bootstrap and the security options."""
    result = parser(description)
    add_security_arguments(result)
    return result


def add_security_arguments(arguments, prefix=''):
    """Adds the security options, each name starting with `prefix` (e.g. 'admin-')."""
    arguments.add_argument(f'--{prefix}security-protocol', default='PLAINTEXT',
                           choices=['PLAINTEXT', 'SSL', 'SASL_PLAINTEXT', 'SASL_SSL'])
    arguments.add_argument(f'--{prefix}sasl-mechanism', default=None)
    arguments.add_argument(f'--{prefix}username', default=None)
    arguments.add_argument(f'--{prefix}password', default=None)
    arguments.add_argument(f'--{prefix}ca-file', default=None)
    arguments.add_argument(f'--{prefix}cert-file', default=None)
    arguments.add_argument(f'--{prefix}key-file', default=None)


class Security:
    """One client identity: a protocol, SASL credentials and TLS files, as the options gave."""

    def __init__(self, args, prefix=''):
        attribute = prefix.replace('-', '_')
        self.protocol = getattr(args, f'{attribute}security_protocol')
        self.mechanism = getattr(args, f'{attribute}sasl_mechanism')
        self.username = getattr(args, f'{attribute}username')
        self.password = getattr(args, f'{attribute}password')
        self.ca_file = getattr(args, f'{attribute}ca_file')
        self.cert_file = getattr(args, f'{attribute}cert_file')
        self.key_file = getattr(args, f'{attribute}key_file')

    def with_user(self, username, password):
        """The same protocol and mechanism as another user."""
        other = object.__new__(Security)
        other.__dict__.update(self.__dict__)
        other.username = username
        other.password = password
        return other

    def describe(self):
        who = self.username if self.mechanism else (self.cert_file or 'no certificate')
        return f'{self.protocol}/{self.mechanism or "-"} as {who}'

    def kafka_python(self):
        """kafka-python keyword arguments."""
        settings = {'security_protocol': self.protocol}
        if self.mechanism:
            settings.update(sasl_mechanism=self.mechanism, sasl_plain_username=self.username,
                            sasl_plain_password=self.password)
        if self.ca_file:
            settings['ssl_cafile'] = self.ca_file
        if self.cert_file:
            settings.update(ssl_certfile=self.cert_file, ssl_keyfile=self.key_file)
        return settings

    def confluent(self):
        """librdkafka settings (confluent-kafka)."""
        settings = {'security.protocol': self.protocol}
        if self.mechanism:
            settings.update({'sasl.mechanisms': self.mechanism, 'sasl.username': self.username,
                             'sasl.password': self.password})
        if self.ca_file:
            settings['ssl.ca.location'] = self.ca_file
        if self.cert_file:
            settings.update({'ssl.certificate.location': self.cert_file,
                             'ssl.key.location': self.key_file})
        return settings


class ErrorLog:
    """Collects librdkafka's error callbacks (connection and authentication failures)."""

    def __init__(self):
        self.errors = []

    def callback(self, error):
        self.errors.append(error)

    def settings(self):
        return {'error_cb': self.callback}

    def describe(self):
        return [f'{error.name()}: {error.str()}' for error in self.errors]


def confluent_messages(count, prefix):
    """The (key, value) pairs the security scripts send: `prefix-key-N`, `prefix-value-N`."""
    return [(f'{prefix}-key-{index}'.encode(), f'{prefix}-value-{index}'.encode())
            for index in range(count)]


def wait_for_error(errors, predicate, what, timeout_s=CLIENT_TIMEOUT_S, poll=None):
    """Waits until an error in `errors.errors` satisfies `predicate`, calling `poll(0.2)` (a
    client's poll) meanwhile; fails with every error seen after `timeout_s`."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        for error in errors.errors:
            if predicate(error):
                return error
        if poll is not None:
            poll(0.2)
        else:
            time.sleep(0.2)
    fail(f'no {what} within {timeout_s}s; errors seen: {errors.describe()}')


__all__ = ['ErrorLog', 'Security', 'add_security_arguments', 'check', 'confluent_messages',
           'fail', 'security_parser', 'wait_for_error']
