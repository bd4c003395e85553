import { describe, expect, it } from "vitest";
import { activityPseudonym, SUBJECT_PATTERN } from "../../../lib/base-c/subject";
import { pseudonymizer } from "../../../lib/pii";
import { config, need } from "../../../config";
import { piiCipher } from "../../support/keys";

const activitySubject = activityPseudonym();

describe("activityPseudonym", () => {
	it("is Base C's keyed pseudonym of the CPF: stable, 43 base64url characters, not the CPF", () => {
		const subject = activitySubject("52998224725");
		expect(subject).toBe(activitySubject("52998224725"));
		expect(subject).toMatch(/^[A-Za-z0-9_-]{43}$/);
		expect(subject).not.toContain("52998224725");
		expect(subject).toBe(pseudonymizer(need(config, "pseudonymKey"), "activity")("52998224725"));
		// Every service makes its own from the settings: they all agree.
		expect(activityPseudonym()("52998224725")).toBe(subject);
	});

	it("differs per CPF, and from the ML export's pseudonym and Base A/B's blind index of the same CPF", () => {
		expect(activitySubject("52998224725")).not.toBe(activitySubject("11144477735"));
		expect(activitySubject("52998224725")).not.toBe(pseudonymizer(need(config, "pseudonymKey"), "ml")("52998224725"));
		expect(Buffer.from(activitySubject("52998224725"), "base64url").toString("hex")).not.toBe(piiCipher().blindIndex("52998224725"));
	});
});

describe("SUBJECT_PATTERN", () => {
	it("takes a pseudonym and never a CPF, bare or formatted, nor anything shorter or longer", () => {
		expect(SUBJECT_PATTERN.test(activitySubject("52998224725"))).toBe(true);
		for (const notOne of ["52998224725", "529.982.247-25", "", "x".repeat(42), "x".repeat(44), `${"a".repeat(42)}.`]) expect(SUBJECT_PATTERN.test(notOne), notOne).toBe(false);
	});
});
