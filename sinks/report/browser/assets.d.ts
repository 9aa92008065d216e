/** esbuild's text loader: a stylesheet imported as its text (bundleOptions in ../browserBundle.ts). */
declare module '*.css' {
  const text: string;
  export default text;
}
