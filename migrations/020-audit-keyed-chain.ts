import type { Migration } from "./migration";

/**
 * The keyed audit chain (docs/audit.md). Rows keep their SHA-256 hashes up to the chain's epoch: the
 * marker row (`audit.chain` / `keyed`) that the audit service appends at its first start after this
 * migration. From there on each row's hash is an HMAC made by the audit service with AUDIT_CHAIN_KEYS,
 * which the database never holds; `key_id` names the key. The trigger still serialises every insert
 * (the same advisory lock the service takes), and refuses an unkeyed row once the chain is keyed: an
 * older release left running would otherwise write rows that `verify` reports as broken.
 */
export const auditKeyedChain: Migration = {
	name: "020-audit-keyed-chain",
	async up({ context: sql }) {
		await sql(`
			ALTER TABLE audit_log ADD COLUMN key_id text;

			CREATE OR REPLACE FUNCTION audit_log_chain() RETURNS trigger LANGUAGE plpgsql AS $$
			DECLARE last audit_log%ROWTYPE;
			BEGIN
				PERFORM pg_advisory_xact_lock(hashtext('audit_log_chain'));
				-- A keyed row comes chained by the audit service, under this lock; verify checks it.
				IF NEW.key_id IS NOT NULL THEN RETURN NEW; END IF;
				SELECT * INTO last FROM audit_log ORDER BY seq DESC LIMIT 1;
				IF last.key_id IS NOT NULL THEN
					RAISE EXCEPTION 'audit_log is keyed: rows are appended by the audit service' USING ERRCODE = 'insufficient_privilege';
				END IF;
				NEW.seq := COALESCE(last.seq, 0) + 1;
				NEW.at := clock_timestamp();
				NEW.prev_hash := COALESCE(last.hash, repeat('0', 64));
				NEW.hash := audit_row_hash(NEW);
				RETURN NEW;
			END $$;
		`);
	},
	async down({ context: sql }) {
		await sql(`
			CREATE OR REPLACE FUNCTION audit_log_chain() RETURNS trigger LANGUAGE plpgsql AS $$
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
			ALTER TABLE audit_log DROP COLUMN IF EXISTS key_id;
		`);
	}
};
