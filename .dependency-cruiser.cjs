// The layers of the code point one way (README "Layout"):
//   services → middlewares, mixins, broker → lib → config
// and nothing imports in a cycle. `npm run lint` runs this; a wrong import fails the build.
/** @type {import("dependency-cruiser").IConfiguration} */
module.exports = {
	forbidden: [
		{ name: "no-cycle", severity: "error", from: {}, to: { circular: true } },
		{
			name: "config-is-the-bottom",
			comment: "config/ reads settings; it imports no code of ours from another layer",
			severity: "error",
			from: { path: "^config/" },
			to: { path: "^(lib|mixins|middlewares|broker|services|migrations)/" }
		},
		{
			name: "lib-needs-no-broker",
			comment: "lib/ is code that needs no broker: it may use config/, never the layers above it",
			severity: "error",
			from: { path: "^lib/" },
			to: { path: "^(mixins|middlewares|broker|services|migrations)/" }
		},
		{
			name: "middlewares-and-mixins-serve-services",
			comment: "the broker's building blocks never reach up into a service",
			severity: "error",
			from: { path: "^(mixins|middlewares|broker)/" },
			to: { path: "^services/" }
		},
		{
			name: "no-service-imports-a-service",
			comment: "services talk over the mesh (ctx.call), never by import",
			severity: "error",
			from: { path: "^services/([^/]+)\\.service\\.ts$" },
			to: { path: "^services/", pathNot: "^services/$1\\.service\\.ts$" }
		},
		{
			name: "product-code-ignores-tools",
			comment: "what ships never imports the tests, benchmarks or scripts",
			severity: "error",
			from: { path: "^(config|lib|mixins|middlewares|broker|services|migrations|types)/|^moleculer\\.config\\.ts$" },
			to: { path: "^(test|bench|scripts)/" }
		}
	],
	options: {
		doNotFollow: { path: "node_modules" },
		exclude: { path: "^(node_modules|dist|\\.data)/" },
		tsPreCompilationDeps: true,
		tsConfig: { fileName: "tsconfig.json" }
	}
};
