import type { Migration } from "./migration";

/** Base A: persons, debts, API consumers, idempotency records and the hash-chained audit log. */
export const baseA: Migration = {
	name: "001-base-a",
	async up({ context: sql }) {
		await sql(`
			GRANT USAGE ON SCHEMA public TO credit_app;

			CREATE TABLE consumers (
				id          uuid PRIMARY KEY,
				name        text NOT NULL,
				key_hash    char(64) NOT NULL UNIQUE,
				scopes      text[] NOT NULL,
				rate_limit  integer NOT NULL CHECK (rate_limit > 0),
				created_at  timestamptz NOT NULL DEFAULT now(),
				revoked_at  timestamptz
			);

			-- Direct identifiers are stored only encrypted; cpf_bidx is the keyed blind index.
			CREATE TABLE persons (
				id            uuid PRIMARY KEY,
				cpf_bidx      char(64) NOT NULL UNIQUE,
				cpf_enc       text NOT NULL,
				nome_enc      text NOT NULL,
				endereco_enc  text NOT NULL,
				created_at    timestamptz NOT NULL DEFAULT now(),
				updated_at    timestamptz NOT NULL DEFAULT now()
			);

			CREATE TABLE debts (
				id               uuid PRIMARY KEY,
				person_id        uuid NOT NULL REFERENCES persons(id) ON DELETE CASCADE,
				valor_cents      bigint NOT NULL CHECK (valor_cents >= 0),
				empresa          text NOT NULL,
				data_vencimento  date NOT NULL,
				data_pagamento   date,
				created_at       timestamptz NOT NULL DEFAULT now(),
				updated_at       timestamptz NOT NULL DEFAULT now()
			);
			CREATE INDEX debts_person_idx ON debts (person_id, data_vencimento);

			CREATE TABLE idempotency_keys (
				consumer_id   text NOT NULL,
				key           text NOT NULL,
				action        text NOT NULL,
				fingerprint   char(64) NOT NULL,
				status        smallint,
				response_enc  text,
				created_at    timestamptz NOT NULL DEFAULT now(),
				PRIMARY KEY (consumer_id, key)
			);

			CREATE TABLE audit_log (
				seq         bigint PRIMARY KEY,
				at          timestamptz NOT NULL,
				consumer    text NOT NULL,
				action      text NOT NULL,
				cpf_bidx    char(64),
				request_id  text,
				outcome     text NOT NULL,
				prev_hash   char(64) NOT NULL,
				hash        char(64) NOT NULL
			);
			CREATE INDEX audit_log_cpf_idx ON audit_log (cpf_bidx, at);
			CREATE INDEX audit_log_at_idx ON audit_log (at);

			-- The one definition of a row's hash: used by the insert trigger and by verification.
			CREATE FUNCTION audit_row_hash(r audit_log) RETURNS char(64) LANGUAGE sql IMMUTABLE AS $$
				SELECT encode(sha256(convert_to(json_build_array(
					r.seq, (extract(epoch FROM r.at) * 1000000)::bigint, r.consumer, r.action,
					r.cpf_bidx, r.request_id, r.outcome, r.prev_hash)::text, 'UTF8')), 'hex')
			$$;

			-- Sequence, time and chain are set here, under a lock, whatever the client sent.
			CREATE FUNCTION audit_log_chain() RETURNS trigger LANGUAGE plpgsql AS $$
			DECLARE last audit_log%ROWTYPE;
			BEGIN
				PERFORM pg_advisory_xact_lock(hashtext('audit_log_chain'));
				SELECT * INTO last FROM audit_log ORDER BY seq DESC LIMIT 1;
				NEW.seq := COALESCE(last.seq, 0) + 1;
				NEW.at := clock_timestamp();
				NEW.prev_hash := COALESCE(last.hash, repeat('0', 64));
				NEW.hash := audit_row_hash(NEW);
				RETURN NEW;
			END $$;
			CREATE TRIGGER audit_log_chain BEFORE INSERT ON audit_log FOR EACH ROW EXECUTE FUNCTION audit_log_chain();

			CREATE FUNCTION audit_log_refuse() RETURNS trigger LANGUAGE plpgsql AS $$
			BEGIN
				RAISE EXCEPTION 'audit_log is insert-only' USING ERRCODE = 'insufficient_privilege';
			END $$;
			CREATE TRIGGER audit_log_immutable BEFORE UPDATE OR DELETE ON audit_log FOR EACH ROW EXECUTE FUNCTION audit_log_refuse();
			CREATE TRIGGER audit_log_no_truncate BEFORE TRUNCATE ON audit_log FOR EACH STATEMENT EXECUTE FUNCTION audit_log_refuse();

			-- Least privilege for the application's role.
			GRANT SELECT, INSERT, UPDATE ON consumers TO credit_app;
			GRANT SELECT, INSERT, UPDATE, DELETE ON persons, debts, idempotency_keys TO credit_app;
			GRANT SELECT, INSERT ON audit_log TO credit_app;
		`);
	},
	async down({ context: sql }) {
		await sql(`
			DROP TABLE IF EXISTS audit_log, idempotency_keys, debts, persons, consumers CASCADE;
			DROP FUNCTION IF EXISTS audit_log_chain(), audit_log_refuse(), audit_row_hash(audit_log);
		`);
	}
};
