import type { ServiceSchema } from "moleculer";
import { piiCipherFromConfig } from "../lib/pii";

/**
 * Per-field encryption of direct identifiers with a blind index for lookups; shared by Base A
 * and Base B. Each ciphertext is bound to `<table>.<field>:<blind index>`.
 */
export const PiiMixin: Partial<ServiceSchema> = {
	created() {
		this.pii = piiCipherFromConfig();
	},
	methods: {
		blindIndex(cpf: string): string {
			return this.pii.blindIndex(cpf);
		},
		/** `{nome: "Ana"}` → `{nome_enc: "v1.k1.…"}` */
		sealFields(table: string, owner: string, values: Record<string, string | undefined>): Record<string, string> {
			const out: Record<string, string> = {};
			for (const [field, value] of Object.entries(values)) {
				if (value !== undefined) out[`${field}_enc`] = this.pii.encrypt(value, `${table}.${field}:${owner}`);
			}
			return out;
		},
		/** `{nome_enc: "v1.k1.…"}` → `{nome: "Ana"}` for the fields asked for. */
		openFields(table: string, owner: string, row: Record<string, any>, fields: string[]): Record<string, string> {
			const out: Record<string, string> = {};
			for (const field of fields) out[field] = this.pii.decrypt(row[`${field}_enc`], `${table}.${field}:${owner}`);
			return out;
		}
	}
};
