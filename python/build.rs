fn main() {
    // Python symbols are resolved by the interpreter that imports the module.
    pyo3_build_config::add_extension_module_link_args();
}
