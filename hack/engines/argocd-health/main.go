// Command argocd-health runs Bud health checks in Argo CD's own Lua engine.
//
// It reads an argocd-cm ConfigMap (the one we ship: gitops/argocd/argocd-cm.yaml), turns its
// resource.customizations.<type>.<group_kind> keys into resource overrides the way Argo CD's
// util/settings does (appendResourceOverridesFromSplitKeys), and evaluates each object with
// util/lua's ResourceHealthOverrides.GetResourceHealth: the call the application controller
// makes, so the library set (base, table, package, a safe os unless useOpenLibs), the 1 s
// context timeout and the health-status validation are Argo CD's, not a copy of them.
//
// Usage: argocd-health --cm argocd-cm.yaml [FILE...]   (no FILE: read stdin)
//
// Objects are YAML or JSON documents (several per stream, a List's items are expanded). One
// JSON line per object is printed: {"kind","name","status","message"} or {"kind","name","error"}.
package main

import (
	"bufio"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"

	"github.com/argoproj/argo-cd/v3/util/lua"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"sigs.k8s.io/yaml"
)

type verdict struct {
	Kind    string  `json:"kind"`
	Name    string  `json:"name"`
	Status  *string `json:"status,omitempty"`
	Message *string `json:"message,omitempty"`
	Error   *string `json:"error,omitempty"`
}

// overridesFromConfigMap mirrors util/settings' appendResourceOverridesFromSplitKeys and
// convertToOverrideKey for the two customization types a health check uses.
func overridesFromConfigMap(path string) (lua.ResourceHealthOverrides, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var cm struct {
		Kind string            `json:"kind"`
		Data map[string]string `json:"data"`
	}
	if err := yaml.Unmarshal(raw, &cm); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	if cm.Kind != "ConfigMap" {
		return nil, fmt.Errorf("%s: kind is %q, want ConfigMap", path, cm.Kind)
	}
	overrides := lua.ResourceHealthOverrides{}
	for k, v := range cm.Data {
		if !strings.HasPrefix(k, "resource.customizations") {
			continue
		}
		parts := strings.SplitN(k, ".", 4)
		if len(parts) < 4 {
			continue
		}
		key := parts[3]
		if gk := strings.Split(key, "_"); len(gk) == 2 {
			key = gk[0] + "/" + gk[1]
		} else if len(gk) != 1 || key == "" {
			return nil, fmt.Errorf("%s: bad group kind in key %q", path, k)
		}
		if key == "all" {
			key = "*/*"
		}
		o := overrides[key]
		switch parts[2] {
		case "health":
			o.HealthLua = v
		case "useOpenLibs":
			b, err := strconv.ParseBool(v)
			if err != nil {
				return nil, fmt.Errorf("%s: %s: %w", path, k, err)
			}
			o.UseOpenLibs = b
		case "actions", "ignoreDifferences", "ignoreResourceUpdates", "knownTypeFields":
			// Not used by health checks.
		default:
			return nil, fmt.Errorf("%s: resource customization type %s not supported", path, parts[2])
		}
		overrides[key] = o
	}
	return overrides, nil
}

// objects decodes every document of r the way the API machinery decodes a live object (numbers
// become int64, as kstatus' NestedInt64 and Argo CD expect); a List's items are expanded.
func objects(r io.Reader) ([]*unstructured.Unstructured, error) {
	dec := utilyaml.NewYAMLOrJSONDecoder(bufio.NewReader(r), 4096)
	var out []*unstructured.Unstructured
	for {
		var raw json.RawMessage
		if err := dec.Decode(&raw); err != nil {
			if errors.Is(err, io.EOF) {
				return out, nil
			}
			return nil, err
		}
		if len(raw) == 0 || string(raw) == "null" {
			continue
		}
		decoded, err := runtime.Decode(unstructured.UnstructuredJSONScheme, raw)
		if err != nil {
			return nil, err
		}
		switch o := decoded.(type) {
		case *unstructured.Unstructured:
			out = append(out, o)
		case *unstructured.UnstructuredList:
			for i := range o.Items {
				out = append(out, &o.Items[i])
			}
		default:
			return nil, fmt.Errorf("unexpected object %T", decoded)
		}
	}
}

func main() {
	cmPath := flag.String("cm", "", "argocd-cm ConfigMap YAML holding resource.customizations.health.* keys")
	flag.Parse()
	if *cmPath == "" {
		fmt.Fprintln(os.Stderr, "argocd-health: --cm is required")
		os.Exit(2)
	}
	overrides, err := overridesFromConfigMap(*cmPath)
	if err != nil {
		fmt.Fprintln(os.Stderr, "argocd-health:", err)
		os.Exit(2)
	}
	var objs []*unstructured.Unstructured
	if flag.NArg() == 0 {
		if objs, err = objects(os.Stdin); err != nil {
			fmt.Fprintln(os.Stderr, "argocd-health: stdin:", err)
			os.Exit(2)
		}
	}
	for _, path := range flag.Args() {
		f, err := os.Open(path)
		if err != nil {
			fmt.Fprintln(os.Stderr, "argocd-health:", err)
			os.Exit(2)
		}
		more, err := objects(f)
		f.Close()
		if err != nil {
			fmt.Fprintf(os.Stderr, "argocd-health: %s: %v\n", path, err)
			os.Exit(2)
		}
		objs = append(objs, more...)
	}
	enc := json.NewEncoder(os.Stdout)
	for _, obj := range objs {
		v := verdict{Kind: obj.GetKind(), Name: obj.GetName()}
		hs, err := overrides.GetResourceHealth(obj)
		switch {
		case err != nil:
			msg := err.Error()
			v.Error = &msg
		case hs == nil:
			msg := "no health check for " + obj.GroupVersionKind().GroupKind().String()
			v.Error = &msg
		default:
			st, msg := string(hs.Status), hs.Message
			v.Status, v.Message = &st, &msg
		}
		if err := enc.Encode(v); err != nil {
			fmt.Fprintln(os.Stderr, "argocd-health:", err)
			os.Exit(1)
		}
	}
}
