import type { Migration } from "./migration";

/**
 * The bootstrap admin key is created with every scope there was then, and never again (a start does not
 * bring back or widen it): it gains `consultations:read`, the scope added with GET /consultations/:cpf.
 */
export const consultationsScope: Migration = {
	name: "011-consultations-scope",
	async up({ context: sql }) {
		await sql(`
			UPDATE consumers SET scopes = array_append(scopes, 'consultations:read')
			WHERE id = '00000000-0000-4000-8000-000000000001' AND NOT ('consultations:read' = ANY(scopes));
		`);
	},
	async down({ context: sql }) {
		await sql("UPDATE consumers SET scopes = array_remove(scopes, 'consultations:read') WHERE id = '00000000-0000-4000-8000-000000000001'");
	}
};
