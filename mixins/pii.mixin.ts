import { type PiiCipher, piiCipherFromConfig } from "../lib/pii";
import type { Mixin, MixinSchema } from "../types/mixin";

/** What PiiMixin adds to `this`. */
export interface PiiThis {
	/** The service's cipher, made from the configured keys when the service is created. */
	pii: PiiCipher;
	blindIndex(cpf: string): string;
	/** `{nome: "Ana"}` → `{nome_enc: "v1.k1.…"}` */
	sealFields(table: string, owner: string, values: Record<string, string | undefined>): Record<string, string>;
	/** `{nome_enc: "v1.k1.…"}` → `{nome: "Ana"}` for the fields asked for; `row` holds each one's `<field>_enc`. */
	openFields<F extends string>(table: string, owner: string, row: object, fields: readonly F[]): Record<F, string>;
}

/**
 * Per-field encryption of direct identifiers with a blind index for lookups; shared by Base A
 * and Base B. Each ciphertext is bound to `<table>.<field>:<blind index>`.
 */
export const PiiMixin = {
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
		openFields<F extends string>(table: string, owner: string, row: object, fields: readonly F[]): Record<F, string> {
			const out = {} as Record<F, string>;
			const sealed = row as Record<`${F}_enc`, string>;
			for (const field of fields) out[field] = this.pii.decrypt(sealed[`${field}_enc`], `${table}.${field}:${owner}`);
			return out;
		}
	}
} satisfies MixinSchema<PiiThis> as unknown as Mixin;
