import Negotiator from "negotiator";
import type { HttpError } from "./errors";
import { ERRORS_PT, LINE_PT, MESSAGES_PT, VALIDATION_PT } from "./messages-pt";

/** The languages of the API's error messages (docs/errors.md): English unless the client prefers Portuguese. */
export type Language = "en" | "pt-BR";

/** The client's choice by Accept-Language (RFC 9110 §12.5.4, q-values): any `pt` range gives pt-BR. */
export function preferredLanguage(acceptLanguage: string | undefined): Language {
	if (!acceptLanguage) return "en";
	const best = new Negotiator({ headers: { "accept-language": acceptLanguage } }).language(["en", "pt-BR", "pt"]);
	return best === "pt-BR" || best === "pt" ? "pt-BR" : "en";
}

interface ValidationItem { type?: string; field?: string; message?: string; expected?: unknown }

const fill = (template: string, item: ValidationItem) =>
	template.replace(/\{field\}/g, String(item.field ?? "")).replace(/\{expected\}/g, Array.isArray(item.expected) ? item.expected.join(", ") : String(item.expected ?? ""));

function itemInPortuguese(item: ValidationItem): ValidationItem {
	const own = item.message !== undefined ? MESSAGES_PT[item.message] : undefined;
	const template = own ?? (item.field === undefined && item.type ? LINE_PT[item.type] : undefined) ?? (item.type ? VALIDATION_PT[item.type] : undefined);
	return template ? { ...item, message: fill(template, item) } : item;
}

/** The same answer with its messages in the language asked for; names, codes, types and fields unchanged. */
export function localize(error: HttpError, language: Language): HttpError {
	if (language === "en") return error;
	const { body } = error;
	const entry = (body.type && ERRORS_PT[body.type]) || (body.code === 429 ? ERRORS_PT.RATE_LIMIT_EXCEEDED : undefined);
	const message = typeof entry === "function" ? entry(body.message) : entry ?? body.message;
	const data = Array.isArray(body.data) ? body.data.map(d => (d && typeof d === "object" ? itemInPortuguese(d as ValidationItem) : d)) : body.data;
	return { ...error, body: { ...body, message, data } };
}
