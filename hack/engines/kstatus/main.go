// Command kstatus computes kstatus' verdict for objects with sigs.k8s.io/cli-utils' own
// pkg/kstatus/status (status.Compute), the library Flux's kustomize-controller, kpt and
// `kubectl apply --prune`'s successors use to decide Current / InProgress / Failed.
//
// Usage: kstatus [FILE...]   (no FILE: read stdin)
//
// Objects are YAML or JSON documents (several per stream, a List's items are expanded). One
// JSON line per object is printed: {"kind","name","status","message"} or {"kind","name","error"}.
package main

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"sigs.k8s.io/cli-utils/pkg/kstatus/status"
)

type verdict struct {
	Kind    string  `json:"kind"`
	Name    string  `json:"name"`
	Status  *string `json:"status,omitempty"`
	Message *string `json:"message,omitempty"`
	Error   *string `json:"error,omitempty"`
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
	var objs []*unstructured.Unstructured
	var err error
	if len(os.Args) < 2 {
		if objs, err = objects(os.Stdin); err != nil {
			fmt.Fprintln(os.Stderr, "kstatus: stdin:", err)
			os.Exit(2)
		}
	}
	for _, path := range os.Args[1:] {
		f, err := os.Open(path)
		if err != nil {
			fmt.Fprintln(os.Stderr, "kstatus:", err)
			os.Exit(2)
		}
		more, err := objects(f)
		f.Close()
		if err != nil {
			fmt.Fprintf(os.Stderr, "kstatus: %s: %v\n", path, err)
			os.Exit(2)
		}
		objs = append(objs, more...)
	}
	enc := json.NewEncoder(os.Stdout)
	for _, obj := range objs {
		v := verdict{Kind: obj.GetKind(), Name: obj.GetName()}
		res, err := status.Compute(obj)
		if err != nil {
			msg := err.Error()
			v.Error = &msg
		} else {
			st, msg := string(res.Status), res.Message
			v.Status, v.Message = &st, &msg
		}
		if err := enc.Encode(v); err != nil {
			fmt.Fprintln(os.Stderr, "kstatus:", err)
			os.Exit(1)
		}
	}
}
