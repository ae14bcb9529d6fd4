// GraphQL types from the media service's checked-in schema. Every operation the app sends
// is written with `graphql(...)` (src/api/operations.ts) and validated here, so a schema
// change that breaks one fails `npm run build` before tsc even runs.
import type { CodegenConfig } from '@graphql-codegen/cli';

const config: CodegenConfig = {
  schema: '../services/media/schema.graphql',
  documents: ['src/**/*.{ts,tsx}', '!src/gql/**/*'],
  ignoreNoDocuments: false,
  silent: true,
  generates: {
    './src/gql/': {
      preset: 'client',
      presetConfig: { fragmentMasking: false },
      config: {
        documentMode: 'string',
        useTypeImports: true,
        enumsAsTypes: true,
        strictScalars: true,
        scalars: { DateTime: 'string' },
        skipTypename: true,
      },
    },
  },
};

export default config;
