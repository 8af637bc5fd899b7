// The owned-header list: every spelling of an identity or forwarding header is dropped from clients.
import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { DEFAULT_OWNED_HEADERS, OwnedHeaders, headerKey, isOwnedHeader } from './owned-headers.js';
import { upstreamRequestHeaders, type ForwardingFacts } from './headers.js';

const UNTRUSTED: ForwardingFacts = { id: 'rid-1', peerAddress: '203.0.113.7', peerTrusted: false, secure: false };
const TRUSTED: ForwardingFacts = { id: 'rid-2', peerAddress: '10.0.0.2', peerTrusted: true, secure: false };

describe('OwnedHeaders', () => {
  test('names are compared lower-cased with "_" read as "-"', () => {
    assert.equal(headerKey('X_User_Id'), 'x-user-id');
    for (const name of ['X-User-Id', 'x_user_id', 'X_USER-ID', 'x-user_email', 'X-Consumer-Id', 'x_consumer_name', 'X_Request_ID', 'x-proxy-by']) {
      assert.equal(isOwnedHeader(name), true, name);
    }
    for (const name of ['X_Forwarded_For', 'x-forwarded-port', 'X-Forwarded-Prefix', 'x_forwarded_anything', 'Forwarded', 'X_Real_IP', 'X-Original-URL', 'x_rewrite_url']) {
      assert.equal(isOwnedHeader(name), true, name);
    }
    // CDNs' client-address headers are dropped from clients as forwarding headers are, but the gateway never writes
    // them: rewrites and plugins may (review16-headers-client-address-kin).
    for (const name of ['True-Client-IP', 'cf_connecting_ip', 'Fastly-Client-IP', 'X-Client-IP', 'x-cluster-client-ip', 'x-forwarded']) {
      assert.equal(DEFAULT_OWNED_HEADERS.isClientAddressHeader(name), true, name);
      assert.equal(DEFAULT_OWNED_HEADERS.isOwned(name), false, name);
      assert.equal(DEFAULT_OWNED_HEADERS.dropFromClient(headerKey(name), false), true, name);
    }
    assert.equal(DEFAULT_OWNED_HEADERS.dropFromClient('true-client-ip', true), false, 'a trusted proxy\'s passes');
    assert.equal(DEFAULT_OWNED_HEADERS.dropFromClient('true_client_ip', true), true, 'misspelled, never');
    assert.ok(!DEFAULT_OWNED_HEADERS.names.includes('true-client-ip'), 'not listed as owned');
    for (const name of ['accept', 'x-user', 'x-userid', 'authorization', 'x-forwardedx', 'x-real-ipv6', 'traceparent', 'x-client']) {
      assert.equal(isOwnedHeader(name), false, name);
    }
  });

  test('the identity names follow the configuration, and tracing adds traceparent/tracestate', () => {
    const owned = new OwnedHeaders({ identityHeaders: ['X-Auth-Subject', 'X_Auth_Mail'], tracing: true });
    for (const name of ['x-auth-subject', 'X_AUTH_SUBJECT', 'x-auth-mail', 'traceparent', 'TraceState', 'x-consumer-id']) {
      assert.equal(owned.isOwned(name), true, name);
    }
    assert.equal(owned.isOwned('x-user-id'), false);
    assert.ok(owned.names.includes('x-auth-mail'));
    assert.ok(owned.names.includes('x-forwarded-*'));
  });

  test('forwarding headers are dropped from a client, kept from a trusted proxy unless misspelled', () => {
    const owned = DEFAULT_OWNED_HEADERS;
    assert.equal(owned.dropFromClient('x-real-ip', false), true);
    assert.equal(owned.dropFromClient('x-real-ip', true), false);
    assert.equal(owned.dropFromClient('x_real_ip', true), true);
    assert.equal(owned.dropFromClient('x-user-id', true), true);
    assert.equal(owned.dropFromClient('accept', false), false);
  });
});

describe('headers routes decide on (judgedHeaders)', () => {
  test('another _/- spelling of a condition header is dropped; the spellings routes name pass; nothing else changes', () => {
    const owned = new OwnedHeaders({ identityHeaders: [], judgedHeaders: ['x-api-version', 'X_Tenant'] });
    assert.equal(owned.dropFromClient('x-api-version', false), false);
    assert.equal(owned.dropFromClient('x_api_version', false), true);
    assert.equal(owned.dropFromClient('x_api-version', true), true);
    assert.equal(owned.dropFromClient('x_tenant', false), false, 'the spelling a route names');
    assert.equal(owned.dropFromClient('x-tenant', false), true);
    assert.equal(owned.dropFromClient('x_other', false), false);
    assert.equal(owned.isOwned('x-api-version'), false, 'rewrites and plugins may still set it');
  });
});

describe('upstreamRequestHeaders with the owned list', () => {
  /** Header spellings a client might try, in node's lower-cased form. */
  const SPOOFED = {
    'x-user-id': 'victim',
    x_user_id: 'victim',
    'x-user_email': 'victim@example.com',
    x_consumer_id: 'c1',
    'x-consumer-name': 'c1',
    x_request_id: 'mine',
    'x-proxy-by': 'me',
    x_forwarded_for: '1.1.1.1',
    'x_forwarded-proto': 'https',
    'x-forwarded-port': '443',
    'x-forwarded-prefix': '/admin',
    forwarded: 'for=1.1.1.1;proto=https',
    'x-real-ip': '1.1.1.1',
    x_real_ip: '1.1.1.1',
    'x-original-url': '/admin',
    'x-rewrite-url': '/admin',
    accept: 'application/json',
  };

  test('from an untrusted client every spelling of an owned header is gone; gateway values replace the rest', () => {
    const out = upstreamRequestHeaders({ host: 'h', ...SPOOFED }, UNTRUSTED);
    assert.deepEqual(Object.keys(out).sort(), ['accept', 'host', 'x-forwarded-for', 'x-forwarded-host', 'x-forwarded-proto', 'x-request-id']);
    assert.equal(out['x-forwarded-for'], '203.0.113.7');
    assert.equal(out['x-forwarded-proto'], 'http');
    assert.equal(out['x-request-id'], 'rid-1');
  });

  test('from a trusted proxy the correctly spelled forwarding headers pass; identity and misspellings never do', () => {
    const out = upstreamRequestHeaders({ host: 'h', ...SPOOFED }, TRUSTED);
    assert.equal(out['x-forwarded-port'], '443');
    assert.equal(out['x-forwarded-prefix'], '/admin');
    assert.equal(out.forwarded, 'for=1.1.1.1;proto=https');
    assert.equal(out['x-real-ip'], '1.1.1.1');
    assert.equal(out['x-original-url'], '/admin');
    for (const name of ['x-user-id', 'x_user_id', 'x-user_email', 'x_consumer_id', 'x-consumer-name', 'x_request_id', 'x-proxy-by', 'x_forwarded_for', 'x_forwarded-proto', 'x_real_ip']) {
      assert.equal(out[name], undefined, name);
    }
    assert.equal(out['x-request-id'], 'rid-2');
  });

  test('configured identity header names are dropped in every spelling', () => {
    const owned = new OwnedHeaders({ identityHeaders: ['X-Auth-Subject'] });
    const out = upstreamRequestHeaders({ x_auth_subject: 'victim', 'x-auth-subject': 'victim', 'x-user-id': 'kept' }, UNTRUSTED, owned);
    assert.equal(out.x_auth_subject, undefined);
    assert.equal(out['x-auth-subject'], undefined);
    assert.equal(out['x-user-id'], 'kept');
  });
});
