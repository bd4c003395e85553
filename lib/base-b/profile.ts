import { formatDate, yearsBetween } from "../dates";

export interface Asset {
	tipo: string;
	inicioPosse: string; // ISO
	quitado: boolean;
}

/** A stored profile document: identifiers sealed, the rest in the clear for the ML jobs. */
export interface ProfileDoc {
	_id: string; // blind index of the CPF
	cpf_enc: string;
	endereco_enc: string;
	dataNascimento_enc: string;
	fonteDeRenda: string;
	bens: Asset[];
	createdAt: Date;
	updatedAt: Date;
	/** The event (an intent in Base A's outbox) the last write announced: docs/webhooks.md. */
	lastEventId?: string;
	/** Write marks: the Idempotency-Keys (digests) this profile was written under, and when (lib/base-b/write-marks.ts). */
	writes?: Record<string, Date>;
}

/** Payload B exactly as in the seed; `idade` is computed now, never stored. */
export function profileView(doc: ProfileDoc, opened: { cpf: string; endereco: string; dataNascimento: string }, todayIso: string) {
	return {
		cpf: opened.cpf,
		dataNascimento: formatDate(opened.dataNascimento),
		idade: yearsBetween(opened.dataNascimento, todayIso),
		endereco: opened.endereco,
		fonteDeRenda: doc.fonteDeRenda,
		bens: doc.bens.map(b => ({ tipo: b.tipo, inicioPosse: formatDate(b.inicioPosse), quitado: b.quitado }))
	};
}
