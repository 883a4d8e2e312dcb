/* A shared object with thread-local storage, built many times under
 * different names: loading more TLS modules than the initial dynamic thread
 * vector holds makes ld.so grow it, and the initial vector came from ld.so's
 * own minimal malloc, not from the front end. */
__thread long tls_module_value[4];

long tls_module_touch(long v);
long tls_module_touch(long v)
{
    tls_module_value[v & 3] += v;
    return tls_module_value[v & 3];
}
