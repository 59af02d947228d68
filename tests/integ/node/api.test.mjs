// api.test.mjs — the Files, Models, Jobs (lifecycle without training) and
// Chat Completions APIs through the official openai SDK, plus raw checks of
// error shapes, headers, size limits, auth and crash safety of uploads.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { execFileSync } from 'node:child_process';
import OpenAI, { toFile } from 'openai';
import { ANIMAL, readJsonl, sleep, startServer, tempDir } from './server.mjs';

describe('hone serve with the openai SDK', () => {
  let srv, client, data;
  before(async () => {
    data = tempDir('api');
    srv = await startServer({ data, args: ['--max-upload-mb', '1'] });
    client = new OpenAI({ baseURL: srv.baseURL, apiKey: 'unused', maxRetries: 0 });
  });
  after(async () => { await srv?.stop(); });

  test('files: create, list with paging, retrieve, content, delete', async () => {
    const train = await client.files.create({
      file: fs.createReadStream(path.join(ANIMAL, 'train.jsonl')), purpose: 'fine-tune',
    });
    assert.match(train.id, /^file-[0-9A-Za-z]{24}$/);
    assert.equal(train.object, 'file');
    assert.equal(train.filename, 'train.jsonl');
    assert.equal(train.bytes, fs.statSync(path.join(ANIMAL, 'train.jsonl')).size);
    assert.equal(train.status, 'processed');
    const valid = await client.files.create({
      file: fs.createReadStream(path.join(ANIMAL, 'valid.jsonl')), purpose: 'fine-tune',
    });
    const batch = await client.files.create({
      file: await toFile(Buffer.from('{"a":1}\n'), 'b.jsonl'), purpose: 'batch',
    });

    const page = await client.files.list({ limit: 2 });
    assert.equal(page.data.length, 2);
    assert.equal(page.has_more, true);
    assert.deepEqual(page.data.map((f) => f.id), [batch.id, valid.id]); // newest first
    const all = [];
    for await (const f of client.files.list({ limit: 1 })) all.push(f.id); // auto-paging
    assert.deepEqual(all, [batch.id, valid.id, train.id]);
    const ft = await client.files.list({ purpose: 'fine-tune', order: 'asc' });
    assert.deepEqual(ft.data.map((f) => f.id), [train.id, valid.id]);

    const got = await client.files.retrieve(train.id);
    assert.equal(got.id, train.id);
    const content = await (await client.files.content(train.id)).text();
    assert.equal(content, fs.readFileSync(path.join(ANIMAL, 'train.jsonl'), 'utf8'));

    const del = await client.files.delete(batch.id);
    assert.deepEqual(del, { id: batch.id, object: 'file', deleted: true });
    await assert.rejects(client.files.retrieve(batch.id), (e) => {
      assert.equal(e.status, 404);
      assert.ok(e instanceof OpenAI.NotFoundError);
      assert.equal(e.error.message, `No such File object: ${batch.id}`);
      assert.equal(e.error.type, 'invalid_request_error');
      assert.ok(e.requestID?.startsWith('req_'));
      return true;
    });
  });

  test('files: bad uploads get clear 4xx errors', async () => {
    const bad = async (bytes, name) => client.files.create({ file: await toFile(Buffer.from(bytes), name), purpose: "fine-tune" });
    await assert.rejects(bad('not json\n', 'x.jsonl'), (e) => e.status === 400 && /Line 1 is not a dictionary/.test(e.message));
    await assert.rejects(bad('', 'x.jsonl'), (e) => e.status === 400 && /empty/.test(e.message));
    await assert.rejects(bad('{"messages":[]}\n', 'x.txt'), (e) => e.status === 400 && /Must be \.jsonl/.test(e.message));
    await assert.rejects(bad('x'.repeat(1.5 * 1024 * 1024), 'big.jsonl'), (e) => e.status === 413);
    // Well-formed JSONL with bad examples: stored, status "error", problems by line.
    const f = await bad('{"messages":[{"role":"usr","content":"hi"}]}\n', 'roles.jsonl');
    assert.equal(f.status, 'error');
    assert.match(f.status_details, /roles\.jsonl:1: messages\[0\]\.role: unrecognized_role: 'usr'/);
  });

  test('an invalid training file: upload status error, job fails with invalid_training_file in data check\'s words', async () => {
    const lines = readJsonl(path.join(ANIMAL, 'train.jsonl')).slice(0, 12).map((x) => JSON.stringify(x));
    lines[6] = '{"messages":[{"role":"user","content":"hi"},{"role":"robot","content":"x"}]}';
    const text = lines.join('\n') + '\n';
    const local = path.join(tempDir('badfile'), 'mixed.jsonl');
    fs.writeFileSync(local, text);
    const f = await client.files.create({ file: await toFile(Buffer.from(text), 'mixed.jsonl'), purpose: 'fine-tune' });
    assert.equal(f.status, 'error');
    // what `hone data check` prints for the same file
    let report = '';
    try { execFileSync(process.env.HONE_BIN, ['data', 'check', local, '--no-estimate'], { encoding: 'utf8' }); } catch (e) { report = e.stdout; }
    const problem = report.split('\n').map((l) => l.trim()).find((l) => l.startsWith('mixed.jsonl:7:'));
    assert.ok(problem, report);
    assert.ok(f.status_details.includes(problem), `${f.status_details}\n vs \n${problem}`);
    const job = await client.fineTuning.jobs.create({ model: 'stories260K', training_file: f.id });
    let got;
    for (let i = 0; i < 100; i++) {
      got = await client.fineTuning.jobs.retrieve(job.id);
      if (got.status === 'failed') break;
      await sleep(100);
    }
    assert.equal(got.status, 'failed');
    assert.equal(got.error.code, 'invalid_training_file');
    assert.ok(got.error.message.includes(problem), `${got.error.message}\n vs \n${problem}`);
  });

  test('raw: error shape, content type and request id on failures', async () => {
    const cases = [
      ['POST', '/chat/completions', '{bad json', 400],
      ['POST', '/chat/completions', '{"model":"stories260K"}', 400],
      ['POST', '/chat/completions', '{"model":"stories260K","messages":[{"role":"user","content":"x"}],"temperature":"hot"}', 400],
      ['POST', '/fine_tuning/jobs', '{"training_file":"file-x"}', 400],
      ['POST', '/fine_tuning/jobs', '{"model":"stories260K","training_file":"file-nope"}', 400],
      ['GET', '/fine_tuning/jobs/ftjob-nope', null, 404],
      ['GET', '/nowhere', null, 404],
    ];
    for (const [method, p, body, status] of cases) {
      const res = await fetch(srv.baseURL + p, { method, body, headers: { 'Content-Type': 'application/json' } });
      assert.equal(res.status, status, `${method} ${p}`);
      assert.equal(res.headers.get('content-type'), 'application/json');
      assert.match(res.headers.get('x-request-id'), /^req_/);
      const j = await res.json();
      assert.deepEqual(Object.keys(j.error).sort(), ['code', 'message', 'param', 'type']);
      assert.ok(j.error.message.length > 10);
    }
    const res = await fetch(srv.baseURL + '/models'); // still serving
    assert.equal(res.status, 200);
  });

  test('models: base models from the models folders', async () => {
    const ids = [];
    for await (const m of client.models.list()) ids.push(m.id);
    assert.ok(ids.includes('stories260K'), ids.join(','));
    const m = await client.models.retrieve('stories260K');
    assert.equal(m.object, 'model');
    await assert.rejects(client.models.retrieve('nope'), (e) => e.status === 404 && e.error.code === 'model_not_found');
  });

  test('chat completions: non-streaming, streaming and .stream()', async () => {
    const messages = [{ role: 'user', content: 'Once upon a time' }];
    const r = await client.chat.completions.create({ model: 'stories260K', messages, max_tokens: 12, temperature: 0 });
    assert.match(r.id, /^chatcmpl-/);
    assert.equal(r.object, 'chat.completion');
    assert.equal(r.choices[0].message.role, 'assistant');
    assert.ok(r.choices[0].message.content.length > 0);
    assert.equal(r.choices[0].finish_reason, 'length');
    assert.equal(r.usage.completion_tokens, 12);
    assert.equal(r.usage.total_tokens, r.usage.prompt_tokens + 12);

    const stream = await client.chat.completions.create({
      model: 'stories260K', messages, max_tokens: 12, temperature: 0, stream: true,
      stream_options: { include_usage: true },
    });
    let text = '', usage = null, finish = null;
    for await (const chunk of stream) {
      if (chunk.usage) usage = chunk.usage;
      for (const c of chunk.choices) {
        text += c.delta.content ?? '';
        finish = c.finish_reason ?? finish;
      }
    }
    assert.equal(text, r.choices[0].message.content); // greedy: same text
    assert.equal(finish, 'length');
    assert.equal(usage.completion_tokens, 12);

    const helper = client.chat.completions.stream({ model: 'stories260K', messages, max_tokens: 12, temperature: 0 });
    const final = await helper.finalChatCompletion();
    assert.equal(final.choices[0].message.content, r.choices[0].message.content);

    const stopAt = r.choices[0].message.content.slice(3, 6);
    const s = await client.chat.completions.create({ model: 'stories260K', messages, max_tokens: 12, temperature: 0, stop: [stopAt] });
    assert.equal(s.choices[0].finish_reason, 'stop');
    assert.ok(!s.choices[0].message.content.includes(stopAt));

    await assert.rejects(client.chat.completions.create({ model: 'nope', messages }), (e) => e.status === 404 && e.error.code === 'model_not_found');
  });

  test('jobs: create, list, retrieve, events, cancel; bad files fail the job', async () => {
    const train = await client.files.create({ file: fs.createReadStream(path.join(ANIMAL, 'train.jsonl')), purpose: 'fine-tune' });
    const job = await client.fineTuning.jobs.create({
      model: 'stories260K', training_file: train.id, suffix: 'lifecycle', seed: 7,
      method: { type: 'supervised', supervised: { hyperparameters: { n_epochs: 1 } } },
      metadata: { purpose: 'lifecycle' },
    });
    assert.match(job.id, /^ftjob-[0-9A-Za-z]{24}$/);
    assert.equal(job.object, 'fine_tuning.job');
    assert.equal(job.status, 'validating_files');
    assert.equal(job.seed, 7);
    assert.equal(job.hyperparameters.n_epochs, 1);
    assert.equal(job.fine_tuned_model, null);
    const cancelled = await client.fineTuning.jobs.cancel(job.id);
    assert.equal(cancelled.status, 'cancelled');
    await assert.rejects(client.fineTuning.jobs.cancel(job.id), (e) => e.status === 400);
    await assert.rejects(client.fineTuning.jobs.resume(job.id), (e) => e.status === 400);

    const listed = await client.fineTuning.jobs.list({ metadata: { purpose: 'lifecycle' } });
    assert.deepEqual(listed.data.map((j) => j.id), [job.id]);
    assert.equal(listed.has_more, false);
    const events = (await client.fineTuning.jobs.listEvents(job.id)).data.map((e) => e.message);
    assert.equal(events.at(-1), `Created fine-tuning job: ${job.id}`); // newest first
    assert.ok(events.includes('Fine-tuning job cancelled'));

    // Too few examples: the job is created, then fails validation.
    const lines = fs.readFileSync(path.join(ANIMAL, 'train.jsonl'), 'utf8').split('\n').slice(0, 7).join('\n') + '\n';
    const small = await client.files.create({ file: await toFile(Buffer.from(lines), 'small.jsonl'), purpose: 'fine-tune' });
    const j2 = await client.fineTuning.jobs.create({ model: 'stories260K', training_file: small.id });
    let got;
    for (let i = 0; i < 100; i++) {
      got = await client.fineTuning.jobs.retrieve(j2.id);
      if (got.status === 'failed') break;
      await sleep(100);
    }
    assert.equal(got.status, 'failed');
    assert.equal(got.error.code, 'invalid_n_examples');
    assert.match(got.error.message, /has 7 example\(s\), but must have at least 10/);

    const page = await client.fineTuning.jobs.list({ limit: 1 });
    assert.equal(page.data[0].id, j2.id);
    assert.equal(page.has_more, true);
    await assert.rejects(client.fineTuning.jobs.retrieve('ftjob-nope'), (e) => e.status === 404);
    await assert.rejects(client.fineTuning.jobs.create({ model: 'stories260K', training_file: train.id, suffix: 'x'.repeat(65) }), (e) => e.status === 400 && e.error.param === 'suffix');
    await assert.rejects(client.fineTuning.jobs.create({ model: 'no-such-model', training_file: train.id }), (e) => e.status === 400 && e.error.code === 'model_not_found');
  });
});

describe('API keys', () => {
  test('HONE_API_KEY: missing or wrong key is 401, the right key works', async () => {
    const srv = await startServer({ data: tempDir('auth'), env: { HONE_API_KEY: 'sk-right' } });
    try {
      const none = await fetch(srv.baseURL + '/models');
      assert.equal(none.status, 401);
      assert.equal(none.headers.get('content-type'), 'application/json');
      assert.match((await none.json()).error.message, /didn't provide an API key/);
      const wrong = new OpenAI({ baseURL: srv.baseURL, apiKey: 'sk-wrong', maxRetries: 0 });
      await assert.rejects(wrong.models.list(), (e) => e instanceof OpenAI.AuthenticationError && e.error.code === 'invalid_api_key');
      const right = new OpenAI({ baseURL: srv.baseURL, apiKey: 'sk-right', maxRetries: 0 });
      const models = await right.models.list();
      assert.ok(models.data.length > 0);
    } finally {
      await srv.stop();
    }
  });
});

describe('crash safety', () => {
  test('kill -9 after uploads: files listed with the same bytes after restart', async () => {
    const data = tempDir('kill9');
    let srv = await startServer({ data });
    let client = new OpenAI({ baseURL: srv.baseURL, apiKey: 'x', maxRetries: 0 });
    const names = ['train.jsonl', 'valid.jsonl', 'test.jsonl'];
    const ids = [];
    for (const n of names)
      ids.push((await client.files.create({ file: fs.createReadStream(path.join(ANIMAL, n)), purpose: 'fine-tune' })).id);
    await srv.kill9();
    srv = await startServer({ data });
    client = new OpenAI({ baseURL: srv.baseURL, apiKey: 'x', maxRetries: 0 });
    try {
      const listed = (await client.files.list()).data.map((f) => f.id);
      assert.deepEqual(listed, [...ids].reverse());
      for (let i = 0; i < names.length; i++) {
        const got = await (await client.files.content(ids[i])).text();
        assert.equal(got, fs.readFileSync(path.join(ANIMAL, names[i]), 'utf8'));
      }
      assert.equal(readJsonl(path.join(ANIMAL, 'valid.jsonl')).length, 40);
    } finally {
      await srv.stop();
    }
  });
});
