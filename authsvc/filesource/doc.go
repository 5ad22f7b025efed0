// Package filesource turns YAML (or JSON) files into the same Go values the
// Kubernetes controller gets from the API server: v1alpha1.AuthPolicy and
// corev1.Secret. It is the config source of `jwtgate serve -f PATH...` and
// `jwtgate check -f PATH...`.
//
// Load reads files and folders and returns every object it could decode plus
// every Problem it met, each with its file, document and, when known, line and
// field path, so that `check` can print them all at once, like `nginx -t`.
// Decoding follows the API server where it matters to users:
//
//   - documents are split the way kubectl splits them (apimachinery's YAMLReader)
//     and converted with sigs.k8s.io/yaml, so YAML 1.1 quirks match `kubectl apply`;
//   - decoding is strict and case-sensitive (sigs.k8s.io/json): an unknown or
//     misspelled field is a Problem naming its full path, such as
//     spec.jwt.algoritms, with a suggestion when a known field is close;
//   - a Secret's data is base64, stringData is merged over it and then cleared,
//     and an empty type becomes Opaque;
//   - a missing metadata.namespace is "default".
//
// Watcher tells `serve` when to call Load again. It watches folders rather than
// files, because editors and Kubernetes volume mounts replace files instead of
// writing them in place, and an inotify watch on a replaced file goes quiet.
package filesource
