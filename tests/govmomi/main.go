// ova-govmomi: checks that govmomi — the Go library behind govc and Terraform's vSphere
// provider — accepts an OVA the way `govc import.ova` would use it.
//
// It reads the OVA with Go's archive/tar, parses the descriptor with govmomi's ovf package,
// and, in govmomi's in-process vCenter simulator, runs CreateImportSpec for every deployment
// option with the given property and network mapping (a `govc import.spec` options file),
// then imports the VM (ImportVApp, uploading the disk through the NFC lease as govc does)
// and counts its NICs. Any error, warning or unexpected count fails the run.
//
// A package of the Go module in this directory, which pins govmomi (go.mod); built with the
// machine's Go by tests/ova_govmomi.rs.
//
// Usage: ova-govmomi -ova FILE.ova -options OPTIONS.json -expect default=2,frontend=3
package main

import (
	"archive/tar"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"

	"github.com/vmware/govmomi/find"
	"github.com/vmware/govmomi/ovf"
	"github.com/vmware/govmomi/simulator"
	"github.com/vmware/govmomi/vim25"
	"github.com/vmware/govmomi/vim25/soap"
	"github.com/vmware/govmomi/vim25/types"
)

// Options is the document `govc import.spec` prints and `govc import.ova -options` reads.
type Options struct {
	Deployment         string
	DiskProvisioning   string
	IPAllocationPolicy string
	IPProtocol         string
	PropertyMapping    []types.KeyValue
	NetworkMapping     []struct{ Name, Network string }
}

// member is one file of the OVA.
type member struct {
	name   string
	size   int64
	offset int64
}

// Report is printed as JSON on success.
type Report struct {
	Descriptor  string                   `json:"descriptor"`
	Members     []string                 `json:"members"`
	Properties  int                      `json:"properties"`
	Deployments map[string]DeployOutcome `json:"deployments"`
}

type DeployOutcome struct {
	ImportSpecNICs int      `json:"import_spec_nics"`
	ImportedNICs   int      `json:"imported_nics"`
	Disks          int      `json:"disks"`
	DiskKB         int64    `json:"disk_capacity_kb"`
	Uploaded       []string `json:"uploaded"`
}

var problems []string

func fail(format string, args ...interface{}) {
	problems = append(problems, fmt.Sprintf(format, args...))
}

func main() {
	ovaPath := flag.String("ova", "", "the OVA to check")
	optionsPath := flag.String("options", "", "govc import.spec options JSON with test values")
	expect := flag.String("expect", "", "expected NIC counts, e.g. default=2,frontend=3")
	flag.Parse()
	if *ovaPath == "" || *optionsPath == "" {
		flag.Usage()
		os.Exit(2)
	}
	report, err := run(*ovaPath, *optionsPath, parseExpect(*expect))
	if err != nil {
		fail("%v", err)
	}
	if len(problems) > 0 {
		for _, p := range problems {
			fmt.Fprintln(os.Stderr, "govmomi:", p)
		}
		os.Exit(1)
	}
	out, _ := json.MarshalIndent(report, "", "  ")
	fmt.Println(string(out))
}

func parseExpect(s string) map[string]int {
	m := map[string]int{}
	for _, kv := range strings.Split(s, ",") {
		if kv == "" {
			continue
		}
		parts := strings.SplitN(kv, "=", 2)
		n, err := strconv.Atoi(parts[len(parts)-1])
		if len(parts) != 2 || err != nil {
			fmt.Fprintf(os.Stderr, "bad -expect entry %q\n", kv)
			os.Exit(2)
		}
		m[parts[0]] = n
	}
	return m
}

// readMembers lists the OVA with Go's tar reader, checking what vSphere requires of it.
func readMembers(path string) ([]member, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	tr := tar.NewReader(f)
	var members []member
	for {
		hdr, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("Go's tar reader: %v", err)
		}
		if hdr.Typeflag != tar.TypeReg {
			fail("member %q has type %q, not a regular file", hdr.Name, hdr.Typeflag)
		}
		if len(hdr.PAXRecords) > 0 {
			fail("member %q has PAX records %v", hdr.Name, hdr.PAXRecords)
		}
		if strings.Contains(hdr.Name, "/") {
			fail("member %q is not a bare name", hdr.Name)
		}
		offset, err := f.Seek(0, io.SeekCurrent)
		if err != nil {
			return nil, err
		}
		members = append(members, member{name: hdr.Name, size: hdr.Size, offset: offset})
	}
	if len(members) == 0 || !strings.HasSuffix(members[0].name, ".ovf") {
		return nil, fmt.Errorf("the first member is not the .ovf descriptor: %v", members)
	}
	return members, nil
}

func find1(members []member, name string) *member {
	for i := range members {
		if members[i].name == name {
			return &members[i]
		}
	}
	return nil
}

func run(ovaPath, optionsPath string, expect map[string]int) (*Report, error) {
	members, err := readMembers(ovaPath)
	if err != nil {
		return nil, err
	}
	f, err := os.Open(ovaPath)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	desc := make([]byte, members[0].size)
	if _, err := f.ReadAt(desc, members[0].offset); err != nil {
		return nil, err
	}
	env, err := ovf.Unmarshal(strings.NewReader(string(desc)))
	if err != nil {
		return nil, fmt.Errorf("govmomi's ovf package cannot parse %s: %v", members[0].name, err)
	}
	if env.VirtualSystem == nil || env.DeploymentOption == nil || env.Network == nil {
		return nil, fmt.Errorf("descriptor without VirtualSystem, DeploymentOptionSection or NetworkSection")
	}

	raw, err := os.ReadFile(optionsPath)
	if err != nil {
		return nil, err
	}
	var opts Options
	if err := json.Unmarshal(raw, &opts); err != nil {
		return nil, fmt.Errorf("options %s: %v", optionsPath, err)
	}

	// Every mapped property exists in the descriptor, and its value fits its type.
	props := map[string]ovf.Property{}
	for _, p := range env.VirtualSystem.Product {
		for _, prop := range p.Property {
			key := prop.Key
			if p.Class != nil && *p.Class != "" {
				key = *p.Class + "." + key
			}
			if p.Instance != nil && *p.Instance != "" {
				key += "." + *p.Instance
			}
			props[key] = prop
		}
	}
	for _, kv := range opts.PropertyMapping {
		prop, ok := props[kv.Key]
		if !ok {
			fail("PropertyMapping key %q is not a property of the descriptor", kv.Key)
			continue
		}
		if prop.UserConfigurable == nil || !*prop.UserConfigurable {
			fail("PropertyMapping key %q is not user-configurable", kv.Key)
		}
		switch {
		case strings.HasPrefix(prop.Type, "int") || strings.HasPrefix(prop.Type, "uint"):
			if _, err := strconv.ParseInt(kv.Value, 10, 64); err != nil {
				fail("property %q of type %s has value %q", kv.Key, prop.Type, kv.Value)
			}
		case prop.Type == "boolean":
			if _, err := strconv.ParseBool(strings.ToLower(kv.Value)); err != nil {
				fail("property %q of type boolean has value %q", kv.Key, kv.Value)
			}
		}
	}

	report := &Report{
		Descriptor:  members[0].name,
		Properties:  len(props),
		Deployments: map[string]DeployOutcome{},
	}
	for _, m := range members {
		report.Members = append(report.Members, m.name)
	}

	model := simulator.VPX()
	err = model.Run(func(ctx context.Context, c *vim25.Client) error {
		finder := find.NewFinder(c)
		dc, err := finder.DefaultDatacenter(ctx)
		if err != nil {
			return err
		}
		finder.SetDatacenter(dc)
		// The VPX model has a cluster and a standalone host: use the first pool.
		pools, err := finder.ResourcePoolList(ctx, "*")
		if err != nil {
			return err
		}
		pool := pools[0]
		ds, err := finder.DefaultDatastore(ctx)
		if err != nil {
			return err
		}
		network, err := finder.Network(ctx, "VM Network")
		if err != nil {
			return err
		}
		folders, err := dc.Folders(ctx)
		if err != nil {
			return err
		}
		manager := ovf.NewManager(c)

		for _, conf := range env.DeploymentOption.Configuration {
			name := "haproxy-" + conf.ID
			cisp := types.OvfCreateImportSpecParams{
				OvfManagerCommonParams: types.OvfManagerCommonParams{
					Locale:           "US",
					DeploymentOption: conf.ID,
				},
				EntityName:         name,
				DiskProvisioning:   opts.DiskProvisioning,
				IpAllocationPolicy: opts.IPAllocationPolicy,
				IpProtocol:         opts.IPProtocol,
				PropertyMapping:    opts.PropertyMapping,
			}
			for _, n := range opts.NetworkMapping {
				cisp.NetworkMapping = append(cisp.NetworkMapping, types.OvfNetworkMapping{
					Name:    n.Name,
					Network: network.Reference(),
				})
			}
			spec, err := manager.CreateImportSpec(ctx, string(desc), pool, ds, &cisp)
			if err != nil {
				return fmt.Errorf("CreateImportSpec(%s): %v", conf.ID, err)
			}
			for _, e := range spec.Error {
				fail("CreateImportSpec(%s) error: %s", conf.ID, e.LocalizedMessage)
			}
			for _, w := range spec.Warning {
				fail("CreateImportSpec(%s) warning: %s", conf.ID, w.LocalizedMessage)
			}
			vmSpec, ok := spec.ImportSpec.(*types.VirtualMachineImportSpec)
			if !ok {
				return fmt.Errorf("CreateImportSpec(%s): no VirtualMachineImportSpec", conf.ID)
			}
			var outcome DeployOutcome
			for _, change := range vmSpec.ConfigSpec.DeviceChange {
				switch d := change.GetVirtualDeviceConfigSpec().Device.(type) {
				case types.BaseVirtualEthernetCard:
					outcome.ImportSpecNICs++
				case *types.VirtualDisk:
					outcome.Disks++
					outcome.DiskKB = d.CapacityInKB
				}
			}

			// Import as govc does: every file the spec asks for comes from the OVA.
			for _, item := range spec.FileItem {
				m := find1(members, item.Path)
				if m == nil {
					fail("file item %q is not in the OVA", item.Path)
				} else if item.Size != 0 && item.Size != m.size {
					fail("file item %q: the descriptor says %d bytes, the OVA has %d", item.Path, item.Size, m.size)
				}
			}
			lease, err := pool.ImportVApp(ctx, spec.ImportSpec, folders.VmFolder, nil)
			if err != nil {
				return fmt.Errorf("ImportVApp(%s): %v", conf.ID, err)
			}
			info, err := lease.Wait(ctx, spec.FileItem)
			if err != nil {
				return fmt.Errorf("lease(%s): %v", conf.ID, err)
			}
			updater := lease.StartUpdater(ctx, info)
			for _, item := range info.Items {
				m := find1(members, item.Path)
				if m == nil {
					continue
				}
				r := io.NewSectionReader(f, m.offset, m.size)
				if err := lease.Upload(ctx, item, r, soap.Upload{ContentLength: m.size}); err != nil {
					updater.Done()
					return fmt.Errorf("upload %s (%s): %v", item.Path, conf.ID, err)
				}
				outcome.Uploaded = append(outcome.Uploaded, item.Path)
			}
			updater.Done()
			if err := lease.Complete(ctx); err != nil {
				return fmt.Errorf("lease complete (%s): %v", conf.ID, err)
			}
			vm, err := finder.VirtualMachine(ctx, name)
			if err != nil {
				return fmt.Errorf("the imported VM %s: %v", name, err)
			}
			devices, err := vm.Device(ctx)
			if err != nil {
				return err
			}
			outcome.ImportedNICs = len(devices.SelectByType((*types.VirtualEthernetCard)(nil)))

			if want, ok := expect[conf.ID]; ok {
				if outcome.ImportSpecNICs != want || outcome.ImportedNICs != want {
					fail("%s: %d NICs in the import spec, %d on the imported VM; expected %d",
						conf.ID, outcome.ImportSpecNICs, outcome.ImportedNICs, want)
				}
			}
			if outcome.Disks != 1 {
				fail("%s: %d disks in the import spec, expected 1", conf.ID, outcome.Disks)
			}
			report.Deployments[conf.ID] = outcome
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	for id := range expect {
		if _, ok := report.Deployments[id]; !ok {
			fail("deployment option %q is not in the descriptor", id)
		}
	}
	return report, nil
}
