/*
 * Test-only stand-in for bcryptprimitives.dll under Wine (deploy/wine/run.py).
 *
 * Rust's standard library (1.78 and later) takes its randomness from ProcessPrng in
 * bcryptprimitives.dll, which every supported Windows has but Debian 12's Wine 8 does not:
 * without it dozor-agent.exe cannot start under Wine. This DLL exports ProcessPrng over
 * RtlGenRandom (advapi32's SystemFunction036), which Wine has. It is never shipped.
 */
#include <windows.h>

BOOLEAN WINAPI SystemFunction036(PVOID buffer, ULONG length);

__declspec(dllexport) BOOL WINAPI ProcessPrng(PBYTE data, SIZE_T length)
{
    while (length > 0) {
        ULONG chunk = length > 0x40000000 ? 0x40000000 : (ULONG)length;
        if (!SystemFunction036(data, chunk)) {
            return FALSE;
        }
        data += chunk;
        length -= chunk;
    }
    return TRUE;
}
