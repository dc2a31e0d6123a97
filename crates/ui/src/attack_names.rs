//! MITRE ATT&CK Enterprise techniques by name: our own table of every technique and
//! sub-technique id with its English name (as ATT&CK writes it), the name a Russian-speaking
//! SOC analyst would use, and the technique's tactics.
//!
//! The table follows ATT&CK v19, where Defense Evasion became *Stealth* (TA0005) and
//! *Defense Impairment* (TA0112) was added. The ids v19 retired (Impair Defenses `T1562` and
//! its sub-techniques, `T1070.001`/`.002`, `T1656`, `T1672`) stay in the table as `legacy`,
//! so rules written for earlier versions still show names; they are left out of the matrix.
//!
//! Tactics are catalog keys, the same as [`crate::attack::tactic_key`] returns
//! (`tactic.execution`, ...). A sub-technique has the tactics of its technique.

use std::cmp::Ordering;

use crate::i18n::Lang;

/// One ATT&CK technique or sub-technique.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Technique {
    /// `T1059` or `T1059.001`.
    pub id: &'static str,
    /// The English name; a sub-technique's own name without its technique's (`LSASS Memory`).
    pub en: &'static str,
    /// The Russian name.
    pub ru: &'static str,
    /// Tactic catalog keys of a technique; empty for a sub-technique (see
    /// [`Technique::tactics`]).
    own_tactics: &'static [&'static str],
    /// Retired by ATT&CK v19: kept for the names of older rules' tags, not in the matrix.
    pub legacy: bool,
}

impl Technique {
    /// The name in a language.
    pub fn name(&self, lang: Lang) -> &'static str {
        match lang {
            Lang::En => self.en,
            Lang::Ru => self.ru,
        }
    }

    /// Is this a sub-technique (`T1059.001`)?
    pub fn is_sub(&self) -> bool {
        self.id.contains('.')
    }

    /// The technique's id: `T1059` for `T1059.001`, the id itself for a technique.
    pub fn parent_id(&self) -> &'static str {
        self.id.split('.').next().unwrap_or(self.id)
    }

    /// Tactic catalog keys, in the matrix order; a sub-technique's are its technique's.
    pub fn tactics(&self) -> &'static [&'static str] {
        if self.is_sub() {
            technique(self.parent_id()).map_or(&[], |p| p.own_tactics)
        } else {
            self.own_tactics
        }
    }
}

/// The tactics of the ATT&CK v19 Enterprise matrix, left to right, as catalog keys.
pub const TACTICS: [&str; 15] = [
    RECON,
    RESOURCES,
    INITIAL,
    EXECUTION,
    PERSISTENCE,
    PRIVILEGE,
    STEALTH,
    IMPAIR,
    CREDENTIALS,
    DISCOVERY,
    LATERAL,
    COLLECTION,
    C2,
    EXFILTRATION,
    IMPACT,
];

/// The ATT&CK version the table follows.
pub const ATTACK_VERSION: &str = "19";

/// Every technique and sub-technique of the table, in id order (sub-techniques right after
/// their technique), `legacy` ones included.
pub fn techniques() -> &'static [Technique] {
    TABLE
}

/// The techniques of the matrix (no sub-techniques, no legacy ids) that belong to a tactic
/// (a catalog key such as `tactic.execution`), in id order.
pub fn matrix_column(tactic: &str) -> impl Iterator<Item = &'static Technique> + '_ {
    TABLE
        .iter()
        .filter(move |t| !t.legacy && !t.is_sub() && t.own_tactics.contains(&tactic))
}

/// `T1059.001`, `t1059.001` or `attack.t1059.001`, compared without regard to case.
fn cmp_id(a: &str, b: &str) -> Ordering {
    a.bytes()
        .map(|c| c.to_ascii_uppercase())
        .cmp(b.bytes().map(|c| c.to_ascii_uppercase()))
}

fn bare(id: &str) -> &str {
    let id = id.trim();
    match id.get(..7) {
        Some(p) if p.eq_ignore_ascii_case("attack.") => &id[7..],
        _ => id,
    }
}

/// The table's entry for exactly this id (`T1003.001`; case and an `attack.` prefix do not
/// matter), if it has one.
pub fn technique(id: &str) -> Option<&'static Technique> {
    let id = bare(id);
    TABLE
        .binary_search_by(|t| cmp_id(t.id, id))
        .ok()
        .map(|i| &TABLE[i])
}

/// The entry of an id, or for a sub-technique the table lacks, its technique's.
fn entry_or_parent(id: &str) -> Option<&'static Technique> {
    let id = bare(id);
    technique(id).or_else(|| {
        let (parent, _) = id.split_once('.')?;
        technique(parent)
    })
}

/// The name of a technique or sub-technique in a language; for a sub-technique without an
/// entry of its own, its technique's name. `None` for an id the table does not know.
pub fn technique_name(id: &str, lang: Lang) -> Option<&'static str> {
    entry_or_parent(id).map(|t| t.name(lang))
}

/// The tactics (catalog keys) of a technique or sub-technique; empty for an unknown id.
pub fn technique_tactics(id: &str) -> &'static [&'static str] {
    entry_or_parent(id).map_or(&[], Technique::tactics)
}

const RECON: &str = "tactic.reconnaissance";
const RESOURCES: &str = "tactic.resource_development";
const INITIAL: &str = "tactic.initial_access";
const EXECUTION: &str = "tactic.execution";
const PERSISTENCE: &str = "tactic.persistence";
const PRIVILEGE: &str = "tactic.privilege_escalation";
const STEALTH: &str = "tactic.stealth";
const IMPAIR: &str = "tactic.defense_impairment";
const CREDENTIALS: &str = "tactic.credential_access";
const DISCOVERY: &str = "tactic.discovery";
const LATERAL: &str = "tactic.lateral_movement";
const COLLECTION: &str = "tactic.collection";
const C2: &str = "tactic.command_and_control";
const EXFILTRATION: &str = "tactic.exfiltration";
const IMPACT: &str = "tactic.impact";
/// Defense Evasion, the tactic the legacy ids had before v19.
const EVASION: &str = "tactic.defense_evasion";

/// A technique.
const fn tech(
    id: &'static str,
    en: &'static str,
    ru: &'static str,
    tactics: &'static [&'static str],
) -> Technique {
    Technique {
        id,
        en,
        ru,
        own_tactics: tactics,
        legacy: false,
    }
}

/// A sub-technique.
const fn sub(id: &'static str, en: &'static str, ru: &'static str) -> Technique {
    Technique {
        id,
        en,
        ru,
        own_tactics: &[],
        legacy: false,
    }
}

/// A technique or sub-technique ATT&CK v19 retired.
const fn old(
    id: &'static str,
    en: &'static str,
    ru: &'static str,
    tactics: &'static [&'static str],
) -> Technique {
    Technique {
        id,
        en,
        ru,
        own_tactics: tactics,
        legacy: true,
    }
}

#[rustfmt::skip]
static TABLE: &[Technique] = &[
    tech("T1001", "Data Obfuscation", "Обфускация данных", &[C2]),
    sub("T1001.001", "Junk Data", "Мусорные данные"),
    sub("T1001.002", "Steganography", "Стеганография"),
    sub("T1001.003", "Protocol or Service Impersonation", "Имитация протокола или сервиса"),
    tech("T1003", "OS Credential Dumping", "Дамп учётных данных ОС", &[CREDENTIALS]),
    sub("T1003.001", "LSASS Memory", "Память LSASS"),
    sub("T1003.002", "Security Account Manager", "База SAM"),
    sub("T1003.003", "NTDS", "База NTDS"),
    sub("T1003.004", "LSA Secrets", "Секреты LSA"),
    sub("T1003.005", "Cached Domain Credentials", "Кешированные доменные учётные данные"),
    sub("T1003.006", "DCSync", "DCSync"),
    sub("T1003.007", "Proc Filesystem", "Файловая система /proc"),
    sub("T1003.008", "/etc/passwd and /etc/shadow", "/etc/passwd и /etc/shadow"),
    tech("T1005", "Data from Local System", "Данные локальной системы", &[COLLECTION]),
    tech("T1006", "Direct Volume Access", "Прямой доступ к тому", &[STEALTH]),
    tech("T1007", "System Service Discovery", "Перечисление системных служб", &[DISCOVERY]),
    tech("T1008", "Fallback Channels", "Резервные каналы управления", &[C2]),
    tech("T1010", "Application Window Discovery", "Перечисление окон приложений", &[DISCOVERY]),
    tech("T1011", "Exfiltration Over Other Network Medium", "Эксфильтрация через другую сетевую среду", &[EXFILTRATION]),
    sub("T1011.001", "Exfiltration Over Bluetooth", "Эксфильтрация через Bluetooth"),
    tech("T1012", "Query Registry", "Запросы к реестру", &[DISCOVERY]),
    tech("T1014", "Rootkit", "Руткит", &[STEALTH]),
    tech("T1016", "System Network Configuration Discovery", "Сбор сведений о сетевой конфигурации", &[DISCOVERY]),
    sub("T1016.001", "Internet Connection Discovery", "Проверка подключения к интернету"),
    sub("T1016.002", "Wi-Fi Discovery", "Сбор сведений о сетях Wi-Fi"),
    tech("T1018", "Remote System Discovery", "Поиск удалённых систем", &[DISCOVERY]),
    tech("T1020", "Automated Exfiltration", "Автоматическая эксфильтрация", &[EXFILTRATION]),
    sub("T1020.001", "Traffic Duplication", "Дублирование трафика"),
    tech("T1021", "Remote Services", "Удалённые службы", &[LATERAL]),
    sub("T1021.001", "Remote Desktop Protocol", "Удалённый рабочий стол (RDP)"),
    sub("T1021.002", "SMB/Windows Admin Shares", "SMB и административные шары Windows"),
    sub("T1021.003", "Distributed Component Object Model", "DCOM"),
    sub("T1021.004", "SSH", "SSH"),
    sub("T1021.005", "VNC", "VNC"),
    sub("T1021.006", "Windows Remote Management", "WinRM"),
    sub("T1021.007", "Cloud Services", "Облачные сервисы"),
    sub("T1021.008", "Direct Cloud VM Connections", "Прямое подключение к облачным ВМ"),
    tech("T1025", "Data from Removable Media", "Данные со съёмных носителей", &[COLLECTION]),
    tech("T1027", "Obfuscated Files or Information", "Обфускация файлов или данных", &[STEALTH]),
    sub("T1027.001", "Binary Padding", "Дополнение двоичного файла"),
    sub("T1027.002", "Software Packing", "Упаковка исполняемых файлов"),
    sub("T1027.003", "Steganography", "Стеганография"),
    sub("T1027.004", "Compile After Delivery", "Компиляция после доставки"),
    sub("T1027.005", "Indicator Removal from Tools", "Удаление индикаторов из инструментов"),
    sub("T1027.006", "HTML Smuggling", "HTML smuggling"),
    sub("T1027.007", "Dynamic API Resolution", "Динамическое разрешение API"),
    sub("T1027.008", "Stripped Payloads", "Нагрузка без отладочных символов"),
    sub("T1027.009", "Embedded Payloads", "Встроенная полезная нагрузка"),
    sub("T1027.010", "Command Obfuscation", "Обфускация команд"),
    sub("T1027.011", "Fileless Storage", "Бесфайловое хранение"),
    sub("T1027.012", "LNK Icon Smuggling", "Нагрузка в значке LNK"),
    sub("T1027.013", "Encrypted/Encoded File", "Зашифрованный или закодированный файл"),
    sub("T1027.014", "Polymorphic Code", "Полиморфный код"),
    sub("T1027.015", "Compression", "Сжатие"),
    sub("T1027.016", "Junk Code Insertion", "Вставка мусорного кода"),
    sub("T1027.017", "SVG Smuggling", "SVG smuggling"),
    sub("T1027.018", "Invisible Unicode", "Невидимые символы Unicode"),
    tech("T1029", "Scheduled Transfer", "Передача по расписанию", &[EXFILTRATION]),
    tech("T1030", "Data Transfer Size Limits", "Передача данных порциями", &[EXFILTRATION]),
    tech("T1033", "System Owner/User Discovery", "Определение владельца и пользователей системы", &[DISCOVERY]),
    tech("T1036", "Masquerading", "Маскировка", &[STEALTH]),
    sub("T1036.001", "Invalid Code Signature", "Недействительная подпись кода"),
    sub("T1036.002", "Right-to-Left Override", "Символ RTLO в имени"),
    sub("T1036.003", "Rename Legitimate Utilities", "Переименование легитимных утилит"),
    sub("T1036.004", "Masquerade Task or Service", "Маскировка задачи или службы"),
    sub("T1036.005", "Match Legitimate Resource Name or Location", "Имя или путь как у легитимного ресурса"),
    sub("T1036.006", "Space after Filename", "Пробел после имени файла"),
    sub("T1036.007", "Double File Extension", "Двойное расширение файла"),
    sub("T1036.008", "Masquerade File Type", "Маскировка типа файла"),
    sub("T1036.009", "Break Process Trees", "Разрыв дерева процессов"),
    sub("T1036.010", "Masquerade Account Name", "Маскировка имени учётной записи"),
    sub("T1036.011", "Overwrite Process Arguments", "Перезапись аргументов процесса"),
    sub("T1036.012", "Browser Fingerprint", "Подмена отпечатка браузера"),
    tech("T1037", "Boot or Logon Initialization Scripts", "Сценарии загрузки и входа в систему", &[PERSISTENCE, PRIVILEGE]),
    sub("T1037.001", "Logon Script (Windows)", "Сценарий входа (Windows)"),
    sub("T1037.002", "Login Hook", "Login Hook (macOS)"),
    sub("T1037.003", "Network Logon Script", "Сетевой сценарий входа"),
    sub("T1037.004", "RC Scripts", "Сценарии RC"),
    sub("T1037.005", "Startup Items", "Элементы автозагрузки (macOS)"),
    tech("T1039", "Data from Network Shared Drive", "Данные с сетевых дисков", &[COLLECTION]),
    tech("T1040", "Network Sniffing", "Перехват сетевого трафика", &[CREDENTIALS, DISCOVERY]),
    tech("T1041", "Exfiltration Over C2 Channel", "Эксфильтрация через канал управления", &[EXFILTRATION]),
    tech("T1046", "Network Service Discovery", "Сканирование сетевых служб", &[DISCOVERY]),
    tech("T1047", "Windows Management Instrumentation", "Инструментарий WMI", &[EXECUTION]),
    tech("T1048", "Exfiltration Over Alternative Protocol", "Эксфильтрация по другому протоколу", &[EXFILTRATION]),
    sub("T1048.001", "Exfiltration Over Symmetric Encrypted Non-C2 Protocol", "Эксфильтрация по протоколу с симметричным шифрованием"),
    sub("T1048.002", "Exfiltration Over Asymmetric Encrypted Non-C2 Protocol", "Эксфильтрация по протоколу с асимметричным шифрованием"),
    sub("T1048.003", "Exfiltration Over Unencrypted Non-C2 Protocol", "Эксфильтрация по незашифрованному протоколу"),
    tech("T1049", "System Network Connections Discovery", "Перечисление сетевых подключений", &[DISCOVERY]),
    tech("T1052", "Exfiltration Over Physical Medium", "Эксфильтрация через физический носитель", &[EXFILTRATION]),
    sub("T1052.001", "Exfiltration over USB", "Эксфильтрация через USB"),
    tech("T1053", "Scheduled Task/Job", "Задачи по расписанию", &[EXECUTION, PERSISTENCE, PRIVILEGE]),
    sub("T1053.002", "At", "At"),
    sub("T1053.003", "Cron", "Cron"),
    sub("T1053.005", "Scheduled Task", "Планировщик заданий"),
    sub("T1053.006", "Systemd Timers", "Таймеры systemd"),
    sub("T1053.007", "Container Orchestration Job", "Задание оркестратора контейнеров"),
    tech("T1055", "Process Injection", "Внедрение в процесс", &[PRIVILEGE, STEALTH]),
    sub("T1055.001", "Dynamic-link Library Injection", "Внедрение DLL"),
    sub("T1055.002", "Portable Executable Injection", "Внедрение PE-образа"),
    sub("T1055.003", "Thread Execution Hijacking", "Перехват выполнения потока"),
    sub("T1055.004", "Asynchronous Procedure Call", "Внедрение через APC"),
    sub("T1055.005", "Thread Local Storage", "Внедрение через TLS-обратные вызовы"),
    sub("T1055.008", "Ptrace System Calls", "Системные вызовы ptrace"),
    sub("T1055.009", "Proc Memory", "Память через /proc"),
    sub("T1055.011", "Extra Window Memory Injection", "Внедрение через дополнительную память окна"),
    sub("T1055.012", "Process Hollowing", "Опустошение процесса (Process Hollowing)"),
    sub("T1055.013", "Process Doppelgänging", "Process Doppelgänging"),
    sub("T1055.014", "VDSO Hijacking", "Перехват VDSO"),
    sub("T1055.015", "ListPlanting", "ListPlanting"),
    tech("T1056", "Input Capture", "Перехват ввода", &[CREDENTIALS, COLLECTION]),
    sub("T1056.001", "Keylogging", "Кейлоггинг"),
    sub("T1056.002", "GUI Input Capture", "Поддельное окно ввода"),
    sub("T1056.003", "Web Portal Capture", "Перехват ввода на веб-портале"),
    sub("T1056.004", "Credential API Hooking", "Перехват API учётных данных"),
    tech("T1057", "Process Discovery", "Перечисление процессов", &[DISCOVERY]),
    tech("T1059", "Command and Scripting Interpreter", "Интерпретаторы команд и сценариев", &[EXECUTION]),
    sub("T1059.001", "PowerShell", "PowerShell"),
    sub("T1059.002", "AppleScript", "AppleScript"),
    sub("T1059.003", "Windows Command Shell", "Командная строка Windows"),
    sub("T1059.004", "Unix Shell", "Командная оболочка Unix"),
    sub("T1059.005", "Visual Basic", "Visual Basic"),
    sub("T1059.006", "Python", "Python"),
    sub("T1059.007", "JavaScript", "JavaScript"),
    sub("T1059.008", "Network Device CLI", "CLI сетевых устройств"),
    sub("T1059.009", "Cloud API", "Облачный API"),
    sub("T1059.010", "AutoHotKey & AutoIT", "AutoHotKey и AutoIT"),
    sub("T1059.011", "Lua", "Lua"),
    sub("T1059.012", "Hypervisor CLI", "CLI гипервизора"),
    sub("T1059.013", "Container CLI/API", "CLI и API контейнеров"),
    tech("T1068", "Exploitation for Privilege Escalation", "Эксплуатация уязвимостей для повышения привилегий", &[PRIVILEGE]),
    tech("T1069", "Permission Groups Discovery", "Перечисление групп и прав", &[DISCOVERY]),
    sub("T1069.001", "Local Groups", "Локальные группы"),
    sub("T1069.002", "Domain Groups", "Доменные группы"),
    sub("T1069.003", "Cloud Groups", "Облачные группы"),
    tech("T1070", "Indicator Removal", "Удаление следов", &[STEALTH]),
    old("T1070.001", "Clear Windows Event Logs", "Очистка журналов событий Windows", &[]),
    old("T1070.002", "Clear Linux or Mac System Logs", "Очистка системных журналов Linux или macOS", &[]),
    sub("T1070.003", "Clear Command History", "Очистка истории команд"),
    sub("T1070.004", "File Deletion", "Удаление файлов"),
    sub("T1070.005", "Network Share Connection Removal", "Удаление подключений к сетевым ресурсам"),
    sub("T1070.006", "Timestomp", "Подмена меток времени файлов"),
    sub("T1070.007", "Clear Network Connection History and Configurations", "Очистка истории и настроек сетевых подключений"),
    sub("T1070.008", "Clear Mailbox Data", "Очистка данных почтового ящика"),
    sub("T1070.009", "Clear Persistence", "Удаление механизмов закрепления"),
    sub("T1070.010", "Relocate Malware", "Перемещение вредоносного ПО"),
    tech("T1071", "Application Layer Protocol", "Протоколы прикладного уровня", &[C2]),
    sub("T1071.001", "Web Protocols", "Веб-протоколы"),
    sub("T1071.002", "File Transfer Protocols", "Протоколы передачи файлов"),
    sub("T1071.003", "Mail Protocols", "Почтовые протоколы"),
    sub("T1071.004", "DNS", "DNS"),
    sub("T1071.005", "Publish/Subscribe Protocols", "Протоколы «издатель — подписчик»"),
    tech("T1072", "Software Deployment Tools", "Средства развёртывания ПО", &[EXECUTION, LATERAL]),
    tech("T1074", "Data Staged", "Подготовка данных к выгрузке", &[COLLECTION]),
    sub("T1074.001", "Local Data Staging", "Локальное накопление данных"),
    sub("T1074.002", "Remote Data Staging", "Удалённое накопление данных"),
    tech("T1078", "Valid Accounts", "Действующие учётные записи", &[INITIAL, PERSISTENCE, PRIVILEGE, STEALTH]),
    sub("T1078.001", "Default Accounts", "Учётные записи по умолчанию"),
    sub("T1078.002", "Domain Accounts", "Доменные учётные записи"),
    sub("T1078.003", "Local Accounts", "Локальные учётные записи"),
    sub("T1078.004", "Cloud Accounts", "Облачные учётные записи"),
    tech("T1080", "Taint Shared Content", "Заражение общих ресурсов", &[LATERAL]),
    tech("T1082", "System Information Discovery", "Сбор сведений о системе", &[DISCOVERY]),
    tech("T1083", "File and Directory Discovery", "Поиск файлов и каталогов", &[DISCOVERY]),
    tech("T1087", "Account Discovery", "Перечисление учётных записей", &[DISCOVERY]),
    sub("T1087.001", "Local Account", "Локальные учётные записи"),
    sub("T1087.002", "Domain Account", "Доменные учётные записи"),
    sub("T1087.003", "Email Account", "Почтовые учётные записи"),
    sub("T1087.004", "Cloud Account", "Облачные учётные записи"),
    tech("T1090", "Proxy", "Прокси", &[C2]),
    sub("T1090.001", "Internal Proxy", "Внутренний прокси"),
    sub("T1090.002", "External Proxy", "Внешний прокси"),
    sub("T1090.003", "Multi-hop Proxy", "Цепочка прокси"),
    sub("T1090.004", "Domain Fronting", "Domain fronting"),
    tech("T1091", "Replication Through Removable Media", "Распространение через съёмные носители", &[INITIAL, LATERAL]),
    tech("T1092", "Communication Through Removable Media", "Связь через съёмные носители", &[C2]),
    tech("T1095", "Non-Application Layer Protocol", "Протоколы ниже прикладного уровня", &[C2]),
    tech("T1098", "Account Manipulation", "Изменение учётных записей", &[PERSISTENCE, PRIVILEGE]),
    sub("T1098.001", "Additional Cloud Credentials", "Дополнительные облачные учётные данные"),
    sub("T1098.002", "Additional Email Delegate Permissions", "Делегирование доступа к почтовому ящику"),
    sub("T1098.003", "Additional Cloud Roles", "Дополнительные облачные роли"),
    sub("T1098.004", "SSH Authorized Keys", "Ключи в authorized_keys"),
    sub("T1098.005", "Device Registration", "Регистрация устройства"),
    sub("T1098.006", "Additional Container Cluster Roles", "Дополнительные роли в кластере контейнеров"),
    sub("T1098.007", "Additional Local or Domain Groups", "Добавление в локальные или доменные группы"),
    tech("T1102", "Web Service", "Веб-сервисы", &[C2]),
    sub("T1102.001", "Dead Drop Resolver", "Тайник с адресом управляющего сервера"),
    sub("T1102.002", "Bidirectional Communication", "Двусторонняя связь"),
    sub("T1102.003", "One-Way Communication", "Односторонняя связь"),
    tech("T1104", "Multi-Stage Channels", "Многоступенчатые каналы", &[C2]),
    tech("T1105", "Ingress Tool Transfer", "Загрузка инструментов извне", &[C2]),
    tech("T1106", "Native API", "Нативный API", &[EXECUTION]),
    tech("T1110", "Brute Force", "Перебор паролей", &[CREDENTIALS]),
    sub("T1110.001", "Password Guessing", "Подбор пароля"),
    sub("T1110.002", "Password Cracking", "Взлом хешей паролей"),
    sub("T1110.003", "Password Spraying", "Распыление паролей"),
    sub("T1110.004", "Credential Stuffing", "Подстановка утёкших учётных данных"),
    tech("T1111", "Multi-Factor Authentication Interception", "Перехват многофакторной аутентификации", &[CREDENTIALS]),
    tech("T1112", "Modify Registry", "Изменение реестра", &[PERSISTENCE, IMPAIR]),
    tech("T1113", "Screen Capture", "Снимки экрана", &[COLLECTION]),
    tech("T1114", "Email Collection", "Сбор электронной почты", &[COLLECTION]),
    sub("T1114.001", "Local Email Collection", "Сбор локальной почты"),
    sub("T1114.002", "Remote Email Collection", "Сбор почты с сервера"),
    sub("T1114.003", "Email Forwarding Rule", "Правило пересылки почты"),
    tech("T1115", "Clipboard Data", "Данные буфера обмена", &[COLLECTION]),
    tech("T1119", "Automated Collection", "Автоматизированный сбор", &[COLLECTION]),
    tech("T1120", "Peripheral Device Discovery", "Перечисление периферийных устройств", &[DISCOVERY]),
    tech("T1123", "Audio Capture", "Запись звука", &[COLLECTION]),
    tech("T1124", "System Time Discovery", "Определение системного времени", &[DISCOVERY]),
    tech("T1125", "Video Capture", "Запись видео", &[COLLECTION]),
    tech("T1127", "Trusted Developer Utilities Proxy Execution", "Запуск через доверенные утилиты разработчика", &[EXECUTION, STEALTH]),
    sub("T1127.001", "MSBuild", "MSBuild"),
    sub("T1127.002", "ClickOnce", "ClickOnce"),
    sub("T1127.003", "JamPlus", "JamPlus"),
    tech("T1129", "Shared Modules", "Общие модули", &[EXECUTION]),
    tech("T1132", "Data Encoding", "Кодирование данных", &[C2]),
    sub("T1132.001", "Standard Encoding", "Стандартное кодирование"),
    sub("T1132.002", "Non-Standard Encoding", "Нестандартное кодирование"),
    tech("T1133", "External Remote Services", "Внешние службы удалённого доступа", &[INITIAL, PERSISTENCE]),
    tech("T1134", "Access Token Manipulation", "Манипуляции с токенами доступа", &[PRIVILEGE, STEALTH]),
    sub("T1134.001", "Token Impersonation/Theft", "Кража токена и олицетворение"),
    sub("T1134.002", "Create Process with Token", "Запуск процесса с чужим токеном"),
    sub("T1134.003", "Make and Impersonate Token", "Создание токена и олицетворение"),
    sub("T1134.004", "Parent PID Spoofing", "Подмена родительского процесса"),
    sub("T1134.005", "SID-History Injection", "Внедрение SID-History"),
    tech("T1135", "Network Share Discovery", "Поиск сетевых общих ресурсов", &[DISCOVERY]),
    tech("T1136", "Create Account", "Создание учётной записи", &[PERSISTENCE]),
    sub("T1136.001", "Local Account", "Локальная учётная запись"),
    sub("T1136.002", "Domain Account", "Доменная учётная запись"),
    sub("T1136.003", "Cloud Account", "Облачная учётная запись"),
    tech("T1137", "Office Application Startup", "Автозапуск через приложения Office", &[PERSISTENCE]),
    sub("T1137.001", "Office Template Macros", "Макросы в шаблонах Office"),
    sub("T1137.002", "Office Test", "Ключ Office Test"),
    sub("T1137.003", "Outlook Forms", "Формы Outlook"),
    sub("T1137.004", "Outlook Home Page", "Домашняя страница Outlook"),
    sub("T1137.005", "Outlook Rules", "Правила Outlook"),
    sub("T1137.006", "Add-ins", "Надстройки Office"),
    tech("T1140", "Deobfuscate/Decode Files or Information", "Деобфускация и декодирование данных", &[STEALTH]),
    tech("T1176", "Software Extensions", "Расширения ПО", &[PERSISTENCE]),
    sub("T1176.001", "Browser Extensions", "Расширения браузера"),
    sub("T1176.002", "IDE Extensions", "Расширения IDE"),
    tech("T1185", "Browser Session Hijacking", "Перехват сеанса браузера", &[COLLECTION]),
    tech("T1187", "Forced Authentication", "Принудительная аутентификация", &[CREDENTIALS]),
    tech("T1189", "Drive-by Compromise", "Заражение при посещении сайта", &[INITIAL]),
    tech("T1190", "Exploit Public-Facing Application", "Эксплуатация уязвимостей публичных приложений", &[INITIAL]),
    tech("T1195", "Supply Chain Compromise", "Атака на цепочку поставок", &[INITIAL]),
    sub("T1195.001", "Compromise Software Dependencies and Development Tools", "Компрометация зависимостей и средств разработки"),
    sub("T1195.002", "Compromise Software Supply Chain", "Компрометация поставок ПО"),
    sub("T1195.003", "Compromise Hardware Supply Chain", "Компрометация поставок оборудования"),
    tech("T1197", "BITS Jobs", "Задания BITS", &[EXECUTION, PERSISTENCE, STEALTH]),
    tech("T1199", "Trusted Relationship", "Доверительные отношения", &[INITIAL]),
    tech("T1200", "Hardware Additions", "Подключение оборудования", &[INITIAL]),
    tech("T1201", "Password Policy Discovery", "Изучение парольной политики", &[DISCOVERY]),
    tech("T1202", "Indirect Command Execution", "Непрямое выполнение команд", &[STEALTH]),
    tech("T1203", "Exploitation for Client Execution", "Эксплуатация уязвимостей клиентского ПО", &[EXECUTION]),
    tech("T1204", "User Execution", "Запуск пользователем", &[EXECUTION]),
    sub("T1204.001", "Malicious Link", "Вредоносная ссылка"),
    sub("T1204.002", "Malicious File", "Вредоносный файл"),
    sub("T1204.003", "Malicious Image", "Вредоносный образ"),
    sub("T1204.004", "Malicious Copy and Paste", "Вредоносная команда для вставки"),
    sub("T1204.005", "Malicious Library", "Вредоносная библиотека"),
    tech("T1205", "Traffic Signaling", "Сигналы в трафике", &[PERSISTENCE, STEALTH, C2]),
    sub("T1205.001", "Port Knocking", "Простукивание портов"),
    sub("T1205.002", "Socket Filters", "Фильтры сокетов"),
    tech("T1207", "Rogue Domain Controller", "Поддельный контроллер домена", &[IMPAIR]),
    tech("T1210", "Exploitation of Remote Services", "Эксплуатация уязвимостей удалённых служб", &[LATERAL]),
    tech("T1211", "Exploitation for Stealth", "Эксплуатация уязвимостей для скрытности", &[STEALTH]),
    tech("T1212", "Exploitation for Credential Access", "Эксплуатация уязвимостей для получения учётных данных", &[CREDENTIALS]),
    tech("T1213", "Data from Information Repositories", "Данные из информационных систем", &[COLLECTION]),
    sub("T1213.001", "Confluence", "Confluence"),
    sub("T1213.002", "Sharepoint", "SharePoint"),
    sub("T1213.003", "Code Repositories", "Репозитории кода"),
    sub("T1213.004", "Customer Relationship Management Software", "CRM-системы"),
    sub("T1213.005", "Messaging Applications", "Мессенджеры"),
    sub("T1213.006", "Databases", "Базы данных"),
    tech("T1216", "System Script Proxy Execution", "Запуск через системные сценарии", &[STEALTH]),
    sub("T1216.001", "PubPrn", "PubPrn"),
    sub("T1216.002", "SyncAppvPublishingServer", "SyncAppvPublishingServer"),
    tech("T1217", "Browser Information Discovery", "Сбор сведений из браузера", &[DISCOVERY]),
    tech("T1218", "System Binary Proxy Execution", "Запуск через системные программы", &[STEALTH]),
    sub("T1218.001", "Compiled HTML File", "Скомпилированная справка (CHM)"),
    sub("T1218.002", "Control Panel", "Панель управления"),
    sub("T1218.003", "CMSTP", "CMSTP"),
    sub("T1218.004", "InstallUtil", "InstallUtil"),
    sub("T1218.005", "Mshta", "Mshta"),
    sub("T1218.007", "Msiexec", "Msiexec"),
    sub("T1218.008", "Odbcconf", "Odbcconf"),
    sub("T1218.009", "Regsvcs/Regasm", "Regsvcs и Regasm"),
    sub("T1218.010", "Regsvr32", "Regsvr32"),
    sub("T1218.011", "Rundll32", "Rundll32"),
    sub("T1218.012", "Verclsid", "Verclsid"),
    sub("T1218.013", "Mavinject", "Mavinject"),
    sub("T1218.014", "MMC", "MMC"),
    sub("T1218.015", "Electron Applications", "Приложения Electron"),
    tech("T1219", "Remote Access Tools", "Средства удалённого доступа", &[C2]),
    sub("T1219.001", "IDE Tunneling", "Туннели через IDE"),
    sub("T1219.002", "Remote Desktop Software", "Программы удалённого рабочего стола"),
    sub("T1219.003", "Remote Access Hardware", "Устройства удалённого доступа"),
    tech("T1220", "XSL Script Processing", "Выполнение сценариев XSL", &[STEALTH]),
    tech("T1221", "Template Injection", "Внедрение шаблонов", &[STEALTH]),
    tech("T1222", "File and Directory Permissions Modification", "Изменение прав на файлы и каталоги", &[IMPAIR]),
    sub("T1222.001", "Windows Permissions", "Права в Windows"),
    sub("T1222.002", "Linux and Mac Permissions", "Права в Linux и macOS"),
    tech("T1480", "Execution Guardrails", "Ограничители выполнения", &[STEALTH]),
    sub("T1480.001", "Environmental Keying", "Привязка к окружению"),
    sub("T1480.002", "Mutual Exclusion", "Мьютекс"),
    tech("T1482", "Domain Trust Discovery", "Перечисление доверий доменов", &[DISCOVERY]),
    tech("T1484", "Domain or Tenant Policy Modification", "Изменение политик домена или тенанта", &[PRIVILEGE, IMPAIR]),
    sub("T1484.001", "Group Policy Modification", "Изменение групповых политик"),
    sub("T1484.002", "Trust Modification", "Изменение доверительных отношений"),
    tech("T1485", "Data Destruction", "Уничтожение данных", &[IMPACT]),
    sub("T1485.001", "Lifecycle-Triggered Deletion", "Удаление правилами жизненного цикла"),
    tech("T1486", "Data Encrypted for Impact", "Шифрование данных", &[IMPACT]),
    tech("T1489", "Service Stop", "Остановка служб", &[IMPACT]),
    tech("T1490", "Inhibit System Recovery", "Препятствование восстановлению системы", &[IMPACT]),
    tech("T1491", "Defacement", "Дефейс", &[IMPACT]),
    sub("T1491.001", "Internal Defacement", "Внутренний дефейс"),
    sub("T1491.002", "External Defacement", "Внешний дефейс"),
    tech("T1495", "Firmware Corruption", "Повреждение прошивки", &[IMPACT]),
    tech("T1496", "Resource Hijacking", "Захват ресурсов", &[IMPACT]),
    sub("T1496.001", "Compute Hijacking", "Захват вычислительных ресурсов"),
    sub("T1496.002", "Bandwidth Hijacking", "Захват пропускной способности"),
    sub("T1496.003", "SMS Pumping", "SMS-накрутка"),
    sub("T1496.004", "Cloud Service Hijacking", "Захват облачных сервисов"),
    tech("T1497", "Virtualization/Sandbox Evasion", "Обход виртуальных сред и песочниц", &[STEALTH, DISCOVERY]),
    sub("T1497.001", "System Checks", "Проверки системы"),
    sub("T1497.002", "User Activity Based Checks", "Проверки активности пользователя"),
    sub("T1497.003", "Time Based Checks", "Проверки по времени"),
    tech("T1498", "Network Denial of Service", "Сетевой отказ в обслуживании", &[IMPACT]),
    sub("T1498.001", "Direct Network Flood", "Прямой флуд"),
    sub("T1498.002", "Reflection Amplification", "Отражение с усилением"),
    tech("T1499", "Endpoint Denial of Service", "Отказ в обслуживании узла", &[IMPACT]),
    sub("T1499.001", "OS Exhaustion Flood", "Исчерпание ресурсов ОС"),
    sub("T1499.002", "Service Exhaustion Flood", "Исчерпание ресурсов службы"),
    sub("T1499.003", "Application Exhaustion Flood", "Исчерпание ресурсов приложения"),
    sub("T1499.004", "Application or System Exploitation", "Эксплуатация уязвимостей приложения или системы"),
    tech("T1505", "Server Software Component", "Компоненты серверного ПО", &[PERSISTENCE]),
    sub("T1505.001", "SQL Stored Procedures", "Хранимые процедуры SQL"),
    sub("T1505.002", "Transport Agent", "Транспортный агент"),
    sub("T1505.003", "Web Shell", "Веб-шелл"),
    sub("T1505.004", "IIS Components", "Компоненты IIS"),
    sub("T1505.005", "Terminal Services DLL", "DLL служб терминалов"),
    sub("T1505.006", "vSphere Installation Bundles", "Установочные пакеты vSphere (VIB)"),
    tech("T1518", "Software Discovery", "Перечисление установленного ПО", &[DISCOVERY]),
    sub("T1518.001", "Security Software Discovery", "Поиск средств защиты"),
    sub("T1518.002", "Backup Software Discovery", "Поиск ПО резервного копирования"),
    tech("T1525", "Implant Internal Image", "Закладка во внутренний образ", &[PERSISTENCE]),
    tech("T1526", "Cloud Service Discovery", "Перечисление облачных сервисов", &[DISCOVERY]),
    tech("T1528", "Steal Application Access Token", "Кража токена доступа приложения", &[CREDENTIALS]),
    tech("T1529", "System Shutdown/Reboot", "Выключение или перезагрузка системы", &[IMPACT]),
    tech("T1530", "Data from Cloud Storage", "Данные из облачного хранилища", &[COLLECTION]),
    tech("T1531", "Account Access Removal", "Лишение доступа к учётным записям", &[IMPACT]),
    tech("T1534", "Internal Spearphishing", "Внутренний целевой фишинг", &[LATERAL]),
    tech("T1535", "Unused/Unsupported Cloud Regions", "Неиспользуемые облачные регионы", &[STEALTH]),
    tech("T1537", "Transfer Data to Cloud Account", "Передача данных в облачную учётную запись", &[EXFILTRATION]),
    tech("T1538", "Cloud Service Dashboard", "Консоль облачного сервиса", &[DISCOVERY]),
    tech("T1539", "Steal Web Session Cookie", "Кража cookie веб-сеанса", &[CREDENTIALS]),
    tech("T1542", "Pre-OS Boot", "Загрузка до запуска ОС", &[PERSISTENCE, STEALTH]),
    sub("T1542.001", "System Firmware", "Системная прошивка"),
    sub("T1542.002", "Component Firmware", "Прошивка компонентов"),
    sub("T1542.003", "Bootkit", "Буткит"),
    sub("T1542.004", "ROMMONkit", "ROMMONkit"),
    sub("T1542.005", "TFTP Boot", "Загрузка по TFTP"),
    tech("T1543", "Create or Modify System Process", "Создание или изменение системного процесса", &[PERSISTENCE, PRIVILEGE]),
    sub("T1543.001", "Launch Agent", "Launch Agent (macOS)"),
    sub("T1543.002", "Systemd Service", "Служба systemd"),
    sub("T1543.003", "Windows Service", "Служба Windows"),
    sub("T1543.004", "Launch Daemon", "Launch Daemon (macOS)"),
    sub("T1543.005", "Container Service", "Служба контейнеров"),
    tech("T1546", "Event Triggered Execution", "Запуск по событию", &[PERSISTENCE, PRIVILEGE]),
    sub("T1546.001", "Change Default File Association", "Изменение ассоциаций файлов"),
    sub("T1546.002", "Screensaver", "Заставка"),
    sub("T1546.003", "Windows Management Instrumentation Event Subscription", "Подписка на события WMI"),
    sub("T1546.004", "Unix Shell Configuration Modification", "Изменение конфигурации командной оболочки"),
    sub("T1546.005", "Trap", "Команда trap"),
    sub("T1546.006", "LC_LOAD_DYLIB Addition", "Добавление LC_LOAD_DYLIB"),
    sub("T1546.007", "Netsh Helper DLL", "Вспомогательная DLL netsh"),
    sub("T1546.008", "Accessibility Features", "Специальные возможности"),
    sub("T1546.009", "AppCert DLLs", "AppCert DLL"),
    sub("T1546.010", "AppInit DLLs", "AppInit DLL"),
    sub("T1546.011", "Application Shimming", "Оболочки совместимости приложений"),
    sub("T1546.012", "Image File Execution Options Injection", "Внедрение через IFEO"),
    sub("T1546.013", "PowerShell Profile", "Профиль PowerShell"),
    sub("T1546.014", "Emond", "Emond"),
    sub("T1546.015", "Component Object Model Hijacking", "Перехват COM-объектов"),
    sub("T1546.016", "Installer Packages", "Установочные пакеты"),
    sub("T1546.017", "Udev Rules", "Правила udev"),
    sub("T1546.018", "Python Startup Hooks", "Хуки запуска Python"),
    tech("T1547", "Boot or Logon Autostart Execution", "Автозапуск при загрузке или входе", &[PERSISTENCE, PRIVILEGE]),
    sub("T1547.001", "Registry Run Keys / Startup Folder", "Ключи Run реестра и папка автозагрузки"),
    sub("T1547.002", "Authentication Package", "Пакет аутентификации"),
    sub("T1547.003", "Time Providers", "Поставщики времени"),
    sub("T1547.004", "Winlogon Helper DLL", "Вспомогательная DLL Winlogon"),
    sub("T1547.005", "Security Support Provider", "Поставщик поддержки безопасности (SSP)"),
    sub("T1547.006", "Kernel Modules and Extensions", "Модули и расширения ядра"),
    sub("T1547.007", "Re-opened Applications", "Повторно открываемые приложения"),
    sub("T1547.008", "LSASS Driver", "Драйвер LSASS"),
    sub("T1547.009", "Shortcut Modification", "Изменение ярлыков"),
    sub("T1547.010", "Port Monitors", "Мониторы портов"),
    sub("T1547.012", "Print Processors", "Обработчики печати"),
    sub("T1547.013", "XDG Autostart Entries", "Автозапуск XDG"),
    sub("T1547.014", "Active Setup", "Active Setup"),
    sub("T1547.015", "Login Items", "Объекты входа (macOS)"),
    tech("T1548", "Abuse Elevation Control Mechanism", "Обход контроля повышения прав", &[PRIVILEGE]),
    sub("T1548.001", "Setuid and Setgid", "Setuid и setgid"),
    sub("T1548.002", "Bypass User Account Control", "Обход UAC"),
    sub("T1548.003", "Sudo and Sudo Caching", "Sudo и кеширование sudo"),
    sub("T1548.004", "Elevated Execution with Prompt", "Запуск с запросом повышения прав"),
    sub("T1548.005", "Temporary Elevated Cloud Access", "Временное повышение прав в облаке"),
    sub("T1548.006", "TCC Manipulation", "Манипуляции с TCC"),
    tech("T1550", "Use Alternate Authentication Material", "Альтернативные данные аутентификации", &[LATERAL]),
    sub("T1550.001", "Application Access Token", "Токен доступа приложения"),
    sub("T1550.002", "Pass the Hash", "Pass-the-Hash"),
    sub("T1550.003", "Pass the Ticket", "Pass-the-Ticket"),
    sub("T1550.004", "Web Session Cookie", "Cookie веб-сеанса"),
    tech("T1552", "Unsecured Credentials", "Незащищённые учётные данные", &[CREDENTIALS]),
    sub("T1552.001", "Credentials In Files", "Учётные данные в файлах"),
    sub("T1552.002", "Credentials in Registry", "Учётные данные в реестре"),
    sub("T1552.003", "Shell History", "История командной оболочки"),
    sub("T1552.004", "Private Keys", "Закрытые ключи"),
    sub("T1552.005", "Cloud Instance Metadata API", "API метаданных облачного экземпляра"),
    sub("T1552.006", "Group Policy Preferences", "Параметры групповой политики (GPP)"),
    sub("T1552.007", "Container API", "API контейнеров"),
    sub("T1552.008", "Chat Messages", "Сообщения в чатах"),
    tech("T1553", "Subvert Trust Controls", "Обход механизмов доверия", &[IMPAIR]),
    sub("T1553.001", "Gatekeeper Bypass", "Обход Gatekeeper"),
    sub("T1553.002", "Code Signing", "Подпись кода"),
    sub("T1553.003", "SIP and Trust Provider Hijacking", "Перехват SIP и поставщиков доверия"),
    sub("T1553.004", "Install Root Certificate", "Установка корневого сертификата"),
    sub("T1553.005", "Mark-of-the-Web Bypass", "Обход Mark-of-the-Web"),
    sub("T1553.006", "Code Signing Policy Modification", "Изменение политики подписи кода"),
    tech("T1554", "Compromise Host Software Binary", "Подмена исполняемых файлов ПО", &[PERSISTENCE]),
    tech("T1555", "Credentials from Password Stores", "Учётные данные из хранилищ паролей", &[CREDENTIALS]),
    sub("T1555.001", "Keychain", "Связка ключей (Keychain)"),
    sub("T1555.002", "Securityd Memory", "Память securityd"),
    sub("T1555.003", "Credentials from Web Browsers", "Учётные данные из браузеров"),
    sub("T1555.004", "Windows Credential Manager", "Диспетчер учётных данных Windows"),
    sub("T1555.005", "Password Managers", "Менеджеры паролей"),
    sub("T1555.006", "Cloud Secrets Management Stores", "Облачные хранилища секретов"),
    tech("T1556", "Modify Authentication Process", "Изменение процесса аутентификации", &[PERSISTENCE, IMPAIR, CREDENTIALS]),
    sub("T1556.001", "Domain Controller Authentication", "Аутентификация на контроллере домена"),
    sub("T1556.002", "Password Filter DLL", "DLL фильтра паролей"),
    sub("T1556.003", "Pluggable Authentication Modules", "Модули PAM"),
    sub("T1556.004", "Network Device Authentication", "Аутентификация на сетевых устройствах"),
    sub("T1556.005", "Reversible Encryption", "Обратимое шифрование паролей"),
    sub("T1556.006", "Multi-Factor Authentication", "Многофакторная аутентификация"),
    sub("T1556.007", "Hybrid Identity", "Гибридная идентификация"),
    sub("T1556.008", "Network Provider DLL", "DLL сетевого поставщика"),
    sub("T1556.009", "Conditional Access Policies", "Политики условного доступа"),
    tech("T1557", "Adversary-in-the-Middle", "Атака „человек посередине“", &[CREDENTIALS, COLLECTION]),
    sub("T1557.001", "Name Resolution Poisoning and SMB Relay", "Подмена разрешения имён и ретрансляция SMB"),
    sub("T1557.002", "ARP Cache Poisoning", "Отравление кеша ARP"),
    sub("T1557.003", "DHCP Spoofing", "Подмена DHCP"),
    sub("T1557.004", "Evil Twin", "Поддельная точка доступа (Evil Twin)"),
    tech("T1558", "Steal or Forge Kerberos Tickets", "Кража или подделка билетов Kerberos", &[CREDENTIALS]),
    sub("T1558.001", "Golden Ticket", "Golden Ticket"),
    sub("T1558.002", "Silver Ticket", "Silver Ticket"),
    sub("T1558.003", "Kerberoasting", "Kerberoasting"),
    sub("T1558.004", "AS-REP Roasting", "AS-REP Roasting"),
    sub("T1558.005", "Ccache Files", "Файлы ccache"),
    tech("T1559", "Inter-Process Communication", "Межпроцессное взаимодействие", &[EXECUTION]),
    sub("T1559.001", "Component Object Model", "COM"),
    sub("T1559.002", "Dynamic Data Exchange", "DDE"),
    sub("T1559.003", "XPC Services", "Службы XPC"),
    tech("T1560", "Archive Collected Data", "Архивирование собранных данных", &[COLLECTION]),
    sub("T1560.001", "Archive via Utility", "Архивирование утилитой"),
    sub("T1560.002", "Archive via Library", "Архивирование библиотекой"),
    sub("T1560.003", "Archive via Custom Method", "Архивирование собственным методом"),
    tech("T1561", "Disk Wipe", "Затирание диска", &[IMPACT]),
    sub("T1561.001", "Disk Content Wipe", "Затирание содержимого диска"),
    sub("T1561.002", "Disk Structure Wipe", "Затирание структуры диска"),
    old("T1562", "Impair Defenses", "Ослабление защиты", &[EVASION]),
    old("T1562.001", "Disable or Modify Tools", "Отключение или изменение средств защиты", &[]),
    old("T1562.002", "Disable Windows Event Logging", "Отключение журналирования событий Windows", &[]),
    old("T1562.003", "Impair Command History Logging", "Нарушение записи истории команд", &[]),
    old("T1562.004", "Disable or Modify System Firewall", "Отключение или изменение межсетевого экрана", &[]),
    old("T1562.006", "Indicator Blocking", "Блокировка сбора индикаторов", &[]),
    old("T1562.007", "Disable or Modify Cloud Firewall", "Отключение или изменение облачного межсетевого экрана", &[]),
    old("T1562.008", "Disable or Modify Cloud Logs", "Отключение или изменение облачных журналов", &[]),
    old("T1562.009", "Safe Mode Boot", "Загрузка в безопасном режиме", &[]),
    old("T1562.010", "Downgrade Attack", "Атака понижения версии", &[]),
    old("T1562.011", "Spoof Security Alerting", "Подделка уведомлений средств защиты", &[]),
    old("T1562.012", "Disable or Modify Linux Audit System", "Отключение или изменение Linux Audit", &[]),
    old("T1562.013", "Disable or Modify Network Device Firewall", "Отключение или изменение межсетевого экрана сетевого устройства", &[]),
    tech("T1563", "Remote Service Session Hijacking", "Перехват сеансов удалённых служб", &[LATERAL]),
    sub("T1563.001", "SSH Hijacking", "Перехват SSH-сеанса"),
    sub("T1563.002", "RDP Hijacking", "Перехват RDP-сеанса"),
    tech("T1564", "Hide Artifacts", "Сокрытие артефактов", &[STEALTH]),
    sub("T1564.001", "Hidden Files and Directories", "Скрытые файлы и каталоги"),
    sub("T1564.002", "Hidden Users", "Скрытые пользователи"),
    sub("T1564.003", "Hidden Window", "Скрытое окно"),
    sub("T1564.004", "NTFS File Attributes", "Атрибуты файлов NTFS"),
    sub("T1564.005", "Hidden File System", "Скрытая файловая система"),
    sub("T1564.006", "Run Virtual Instance", "Запуск виртуальной машины"),
    sub("T1564.007", "VBA Stomping", "Подмена кода VBA (VBA stomping)"),
    sub("T1564.008", "Email Hiding Rules", "Правила сокрытия писем"),
    sub("T1564.009", "Resource Forking", "Ответвления ресурсов (resource fork)"),
    sub("T1564.010", "Process Argument Spoofing", "Подмена аргументов процесса"),
    sub("T1564.011", "Ignore Process Interrupts", "Игнорирование сигналов прерывания"),
    sub("T1564.012", "File/Path Exclusions", "Исключения по файлам и путям"),
    sub("T1564.013", "Bind Mounts", "Bind-монтирование"),
    sub("T1564.014", "Extended Attributes", "Расширенные атрибуты"),
    tech("T1565", "Data Manipulation", "Манипуляции с данными", &[IMPACT]),
    sub("T1565.001", "Stored Data Manipulation", "Изменение хранимых данных"),
    sub("T1565.002", "Transmitted Data Manipulation", "Изменение передаваемых данных"),
    sub("T1565.003", "Runtime Data Manipulation", "Изменение данных в памяти"),
    tech("T1566", "Phishing", "Фишинг", &[INITIAL]),
    sub("T1566.001", "Spearphishing Attachment", "Целевой фишинг с вложением"),
    sub("T1566.002", "Spearphishing Link", "Целевой фишинг со ссылкой"),
    sub("T1566.003", "Spearphishing via Service", "Целевой фишинг через сторонние сервисы"),
    sub("T1566.004", "Spearphishing Voice", "Голосовой фишинг (вишинг)"),
    tech("T1567", "Exfiltration Over Web Service", "Эксфильтрация через веб-сервисы", &[EXFILTRATION]),
    sub("T1567.001", "Exfiltration to Code Repository", "Эксфильтрация в репозиторий кода"),
    sub("T1567.002", "Exfiltration to Cloud Storage", "Эксфильтрация в облачное хранилище"),
    sub("T1567.003", "Exfiltration to Text Storage Sites", "Эксфильтрация на сайты для публикации текста"),
    sub("T1567.004", "Exfiltration Over Webhook", "Эксфильтрация через вебхуки"),
    tech("T1568", "Dynamic Resolution", "Динамическое разрешение адресов", &[C2]),
    sub("T1568.001", "Fast Flux DNS", "Fast Flux DNS"),
    sub("T1568.002", "Domain Generation Algorithms", "Алгоритмы генерации доменов (DGA)"),
    sub("T1568.003", "DNS Calculation", "Вычисление адреса через DNS"),
    tech("T1569", "System Services", "Системные службы", &[EXECUTION]),
    sub("T1569.001", "Launchctl", "Launchctl"),
    sub("T1569.002", "Service Execution", "Запуск через службу"),
    sub("T1569.003", "Systemctl", "Systemctl"),
    tech("T1570", "Lateral Tool Transfer", "Передача инструментов внутри сети", &[LATERAL]),
    tech("T1571", "Non-Standard Port", "Нестандартный порт", &[C2]),
    tech("T1572", "Protocol Tunneling", "Туннелирование протоколов", &[C2]),
    tech("T1573", "Encrypted Channel", "Шифрованный канал", &[C2]),
    sub("T1573.001", "Symmetric Cryptography", "Симметричное шифрование"),
    sub("T1573.002", "Asymmetric Cryptography", "Асимметричное шифрование"),
    tech("T1574", "Hijack Execution Flow", "Перехват потока выполнения", &[EXECUTION, STEALTH]),
    sub("T1574.001", "DLL", "Подмена DLL"),
    sub("T1574.004", "Dylib Hijacking", "Подмена dylib"),
    sub("T1574.005", "Executable Installer File Permissions Weakness", "Слабые права на файлы установщика"),
    sub("T1574.006", "Dynamic Linker Hijacking", "Перехват динамического компоновщика"),
    sub("T1574.007", "Path Interception by PATH Environment Variable", "Перехват через переменную PATH"),
    sub("T1574.008", "Path Interception by Search Order Hijacking", "Перехват порядка поиска"),
    sub("T1574.009", "Path Interception by Unquoted Path", "Перехват через путь без кавычек"),
    sub("T1574.010", "Services File Permissions Weakness", "Слабые права на файлы служб"),
    sub("T1574.011", "Services Registry Permissions Weakness", "Слабые права на ключи реестра служб"),
    sub("T1574.012", "COR_PROFILER", "COR_PROFILER"),
    sub("T1574.013", "KernelCallbackTable", "KernelCallbackTable"),
    sub("T1574.014", "AppDomainManager", "AppDomainManager"),
    tech("T1578", "Modify Cloud Compute Infrastructure", "Изменение облачной вычислительной инфраструктуры", &[IMPAIR]),
    sub("T1578.001", "Create Snapshot", "Создание снимка"),
    sub("T1578.002", "Create Cloud Instance", "Создание облачного экземпляра"),
    sub("T1578.003", "Delete Cloud Instance", "Удаление облачного экземпляра"),
    sub("T1578.004", "Revert Cloud Instance", "Откат облачного экземпляра"),
    sub("T1578.005", "Modify Cloud Compute Configurations", "Изменение конфигурации облачных вычислений"),
    tech("T1580", "Cloud Infrastructure Discovery", "Изучение облачной инфраструктуры", &[DISCOVERY]),
    tech("T1583", "Acquire Infrastructure", "Приобретение инфраструктуры", &[RESOURCES]),
    sub("T1583.001", "Domains", "Домены"),
    sub("T1583.002", "DNS Server", "DNS-сервер"),
    sub("T1583.003", "Virtual Private Server", "Виртуальный сервер (VPS)"),
    sub("T1583.004", "Server", "Сервер"),
    sub("T1583.005", "Botnet", "Ботнет"),
    sub("T1583.006", "Web Services", "Веб-сервисы"),
    sub("T1583.007", "Serverless", "Бессерверные платформы"),
    sub("T1583.008", "Malvertising", "Вредоносная реклама"),
    tech("T1584", "Compromise Infrastructure", "Компрометация инфраструктуры", &[RESOURCES]),
    sub("T1584.001", "Domains", "Домены"),
    sub("T1584.002", "DNS Server", "DNS-сервер"),
    sub("T1584.003", "Virtual Private Server", "Виртуальный сервер (VPS)"),
    sub("T1584.004", "Server", "Сервер"),
    sub("T1584.005", "Botnet", "Ботнет"),
    sub("T1584.006", "Web Services", "Веб-сервисы"),
    sub("T1584.007", "Serverless", "Бессерверные платформы"),
    sub("T1584.008", "Network Devices", "Сетевые устройства"),
    tech("T1585", "Establish Accounts", "Создание учётных записей", &[RESOURCES]),
    sub("T1585.001", "Social Media Accounts", "Учётные записи в соцсетях"),
    sub("T1585.002", "Email Accounts", "Почтовые учётные записи"),
    sub("T1585.003", "Cloud Accounts", "Облачные учётные записи"),
    tech("T1586", "Compromise Accounts", "Компрометация учётных записей", &[RESOURCES]),
    sub("T1586.001", "Social Media Accounts", "Учётные записи в соцсетях"),
    sub("T1586.002", "Email Accounts", "Почтовые учётные записи"),
    sub("T1586.003", "Cloud Accounts", "Облачные учётные записи"),
    tech("T1587", "Develop Capabilities", "Разработка инструментов", &[RESOURCES]),
    sub("T1587.001", "Malware", "Вредоносное ПО"),
    sub("T1587.002", "Code Signing Certificates", "Сертификаты подписи кода"),
    sub("T1587.003", "Digital Certificates", "Цифровые сертификаты"),
    sub("T1587.004", "Exploits", "Эксплойты"),
    tech("T1588", "Obtain Capabilities", "Получение инструментов", &[RESOURCES]),
    sub("T1588.001", "Malware", "Вредоносное ПО"),
    sub("T1588.002", "Tool", "Инструменты"),
    sub("T1588.003", "Code Signing Certificates", "Сертификаты подписи кода"),
    sub("T1588.004", "Digital Certificates", "Цифровые сертификаты"),
    sub("T1588.005", "Exploits", "Эксплойты"),
    sub("T1588.006", "Vulnerabilities", "Сведения об уязвимостях"),
    sub("T1588.007", "Artificial Intelligence", "Искусственный интеллект"),
    tech("T1589", "Gather Victim Identity Information", "Сбор сведений о сотрудниках жертвы", &[RECON]),
    sub("T1589.001", "Credentials", "Учётные данные"),
    sub("T1589.002", "Email Addresses", "Адреса электронной почты"),
    sub("T1589.003", "Employee Names", "Имена сотрудников"),
    tech("T1590", "Gather Victim Network Information", "Сбор сведений о сети жертвы", &[RECON]),
    sub("T1590.001", "Domain Properties", "Сведения о домене"),
    sub("T1590.002", "DNS", "DNS"),
    sub("T1590.003", "Network Trust Dependencies", "Доверенные сетевые связи"),
    sub("T1590.004", "Network Topology", "Топология сети"),
    sub("T1590.005", "IP Addresses", "IP-адреса"),
    sub("T1590.006", "Network Security Appliances", "Сетевые средства защиты"),
    tech("T1591", "Gather Victim Org Information", "Сбор сведений об организации жертвы", &[RECON]),
    sub("T1591.001", "Determine Physical Locations", "Физическое расположение"),
    sub("T1591.002", "Business Relationships", "Деловые связи"),
    sub("T1591.003", "Identify Business Tempo", "Режим работы организации"),
    sub("T1591.004", "Identify Roles", "Роли сотрудников"),
    tech("T1592", "Gather Victim Host Information", "Сбор сведений об узлах жертвы", &[RECON]),
    sub("T1592.001", "Hardware", "Оборудование"),
    sub("T1592.002", "Software", "Программное обеспечение"),
    sub("T1592.003", "Firmware", "Прошивки"),
    sub("T1592.004", "Client Configurations", "Конфигурация клиентов"),
    tech("T1593", "Search Open Websites/Domains", "Поиск на открытых сайтах", &[RECON]),
    sub("T1593.001", "Social Media", "Социальные сети"),
    sub("T1593.002", "Search Engines", "Поисковые системы"),
    sub("T1593.003", "Code Repositories", "Репозитории кода"),
    tech("T1594", "Search Victim-Owned Websites", "Поиск на сайтах жертвы", &[RECON]),
    tech("T1595", "Active Scanning", "Активное сканирование", &[RECON]),
    sub("T1595.001", "Scanning IP Blocks", "Сканирование диапазонов IP"),
    sub("T1595.002", "Vulnerability Scanning", "Сканирование уязвимостей"),
    sub("T1595.003", "Wordlist Scanning", "Сканирование по словарю"),
    tech("T1596", "Search Open Technical Databases", "Поиск в открытых технических базах", &[RECON]),
    sub("T1596.001", "DNS/Passive DNS", "DNS и пассивный DNS"),
    sub("T1596.002", "WHOIS", "WHOIS"),
    sub("T1596.003", "Digital Certificates", "Цифровые сертификаты"),
    sub("T1596.004", "CDNs", "CDN"),
    sub("T1596.005", "Scan Databases", "Базы результатов сканирования"),
    tech("T1597", "Search Closed Sources", "Поиск в закрытых источниках", &[RECON]),
    sub("T1597.001", "Threat Intel Vendors", "Поставщики данных об угрозах"),
    sub("T1597.002", "Purchase Technical Data", "Покупка технических данных"),
    tech("T1598", "Phishing for Information", "Фишинг для сбора сведений", &[RECON]),
    sub("T1598.001", "Spearphishing Service", "Целевой фишинг через сервисы"),
    sub("T1598.002", "Spearphishing Attachment", "Целевой фишинг с вложением"),
    sub("T1598.003", "Spearphishing Link", "Целевой фишинг со ссылкой"),
    sub("T1598.004", "Spearphishing Voice", "Голосовой фишинг (вишинг)"),
    tech("T1599", "Network Boundary Bridging", "Преодоление границ сети", &[IMPAIR]),
    sub("T1599.001", "Network Address Translation Traversal", "Обход NAT"),
    tech("T1600", "Weaken Encryption", "Ослабление шифрования", &[IMPAIR]),
    sub("T1600.001", "Reduce Key Space", "Сокращение пространства ключей"),
    sub("T1600.002", "Disable Crypto Hardware", "Отключение криптооборудования"),
    tech("T1601", "Modify System Image", "Изменение образа системы", &[IMPAIR]),
    sub("T1601.001", "Patch System Image", "Модификация образа системы"),
    sub("T1601.002", "Downgrade System Image", "Откат образа системы"),
    tech("T1602", "Data from Configuration Repository", "Данные из хранилищ конфигурации", &[COLLECTION]),
    sub("T1602.001", "SNMP (MIB Dump)", "SNMP (выгрузка MIB)"),
    sub("T1602.002", "Network Device Configuration Dump", "Выгрузка конфигурации сетевого устройства"),
    tech("T1606", "Forge Web Credentials", "Подделка веб-учётных данных", &[CREDENTIALS]),
    sub("T1606.001", "Web Cookies", "Cookie"),
    sub("T1606.002", "SAML Tokens", "Токены SAML"),
    tech("T1608", "Stage Capabilities", "Размещение инструментов", &[RESOURCES]),
    sub("T1608.001", "Upload Malware", "Размещение вредоносного ПО"),
    sub("T1608.002", "Upload Tool", "Размещение инструментов"),
    sub("T1608.003", "Install Digital Certificate", "Установка цифрового сертификата"),
    sub("T1608.004", "Drive-by Target", "Подготовка сайта для заражения посетителей"),
    sub("T1608.005", "Link Target", "Подготовка цели для ссылки"),
    sub("T1608.006", "SEO Poisoning", "SEO-отравление"),
    tech("T1609", "Container Administration Command", "Команды администрирования контейнеров", &[EXECUTION]),
    tech("T1610", "Deploy Container", "Развёртывание контейнера", &[EXECUTION]),
    tech("T1611", "Escape to Host", "Выход из контейнера на хост", &[PRIVILEGE]),
    tech("T1612", "Build Image on Host", "Сборка образа на хосте", &[STEALTH]),
    tech("T1613", "Container and Resource Discovery", "Перечисление контейнеров и ресурсов", &[DISCOVERY]),
    tech("T1614", "System Location Discovery", "Определение местоположения системы", &[DISCOVERY]),
    sub("T1614.001", "System Language Discovery", "Определение языка системы"),
    tech("T1615", "Group Policy Discovery", "Изучение групповых политик", &[DISCOVERY]),
    tech("T1619", "Cloud Storage Object Discovery", "Перечисление объектов облачного хранилища", &[DISCOVERY]),
    tech("T1620", "Reflective Code Loading", "Рефлективная загрузка кода", &[STEALTH]),
    tech("T1621", "Multi-Factor Authentication Request Generation", "Засыпание запросами MFA", &[CREDENTIALS]),
    tech("T1622", "Debugger Evasion", "Обход отладчика", &[STEALTH, DISCOVERY]),
    tech("T1647", "Plist File Modification", "Изменение файлов plist", &[IMPAIR]),
    tech("T1648", "Serverless Execution", "Бессерверное выполнение", &[EXECUTION]),
    tech("T1649", "Steal or Forge Authentication Certificates", "Кража или подделка сертификатов аутентификации", &[CREDENTIALS]),
    tech("T1650", "Acquire Access", "Покупка доступа", &[RESOURCES]),
    tech("T1651", "Cloud Administration Command", "Команды администрирования облака", &[EXECUTION]),
    tech("T1652", "Device Driver Discovery", "Перечисление драйверов устройств", &[DISCOVERY]),
    tech("T1653", "Power Settings", "Настройки электропитания", &[PERSISTENCE]),
    tech("T1654", "Log Enumeration", "Изучение журналов", &[DISCOVERY]),
    old("T1656", "Impersonation", "Выдача себя за другого", &[EVASION]),
    tech("T1657", "Financial Theft", "Хищение денежных средств", &[IMPACT]),
    tech("T1659", "Content Injection", "Внедрение контента", &[INITIAL, C2]),
    tech("T1665", "Hide Infrastructure", "Сокрытие инфраструктуры", &[C2]),
    tech("T1666", "Modify Cloud Resource Hierarchy", "Изменение иерархии облачных ресурсов", &[IMPAIR]),
    tech("T1667", "Email Bombing", "Почтовая бомбардировка", &[IMPACT]),
    tech("T1668", "Exclusive Control", "Монопольный контроль", &[PERSISTENCE]),
    tech("T1669", "Wi-Fi Networks", "Сети Wi-Fi", &[INITIAL]),
    tech("T1671", "Cloud Application Integration", "Интеграция облачных приложений", &[PERSISTENCE]),
    old("T1672", "Email Spoofing", "Подделка отправителя письма", &[EVASION]),
    tech("T1673", "Virtual Machine Discovery", "Перечисление виртуальных машин", &[DISCOVERY]),
    tech("T1674", "Input Injection", "Внедрение ввода", &[EXECUTION]),
    tech("T1675", "ESXi Administration Command", "Команды администрирования ESXi", &[EXECUTION]),
    tech("T1677", "Poisoned Pipeline Execution", "Отравление конвейера CI/CD", &[EXECUTION]),
    tech("T1678", "Delay Execution", "Отложенное выполнение", &[STEALTH]),
    tech("T1679", "Selective Exclusion", "Выборочное исключение", &[STEALTH]),
    tech("T1680", "Local Storage Discovery", "Изучение локальных хранилищ", &[DISCOVERY]),
    tech("T1681", "Search Threat Vendor Data", "Поиск в отчётах об угрозах", &[RECON]),
    tech("T1682", "Query Public AI Services", "Запросы к публичным ИИ-сервисам", &[RECON]),
    tech("T1683", "Generate Content", "Генерация контента", &[RESOURCES]),
    sub("T1683.001", "Written Content", "Текстовый контент"),
    sub("T1683.002", "Audio-Visual Content", "Аудио- и видеоконтент"),
    tech("T1684", "Social Engineering", "Социальная инженерия", &[STEALTH]),
    sub("T1684.001", "Impersonation", "Выдача себя за другого"),
    sub("T1684.002", "Email Spoofing", "Подделка отправителя письма"),
    tech("T1685", "Disable or Modify Tools", "Отключение или изменение средств защиты", &[IMPAIR]),
    sub("T1685.001", "Disable or Modify Windows Event Log", "Отключение или изменение журнала событий Windows"),
    sub("T1685.002", "Disable or Modify Cloud Log", "Отключение или изменение облачных журналов"),
    sub("T1685.003", "Modify or Spoof Tool UI", "Изменение или подделка интерфейса средств защиты"),
    sub("T1685.004", "Disable or Modify Linux Audit System Log", "Отключение или изменение журнала Linux Audit"),
    sub("T1685.005", "Clear Windows Event Logs", "Очистка журналов событий Windows"),
    sub("T1685.006", "Clear Linux or Mac System Logs", "Очистка системных журналов Linux или macOS"),
    tech("T1686", "Disable or Modify System Firewall", "Отключение или изменение межсетевого экрана", &[IMPAIR]),
    sub("T1686.001", "Cloud Firewall", "Облачный межсетевой экран"),
    sub("T1686.002", "Network Device Firewall", "Межсетевой экран сетевого устройства"),
    sub("T1686.003", "Windows Host Firewall", "Брандмауэр Windows"),
    tech("T1687", "Exploitation for Defense Impairment", "Эксплуатация уязвимостей для ослабления защиты", &[IMPAIR]),
    tech("T1688", "Safe Mode Boot", "Загрузка в безопасном режиме", &[IMPAIR]),
    tech("T1689", "Downgrade Attack", "Атака понижения версии", &[IMPAIR]),
    tech("T1690", "Prevent Command History Logging", "Отключение записи истории команд", &[IMPAIR]),
];

#[cfg(test)]
mod tests {
    use super::*;
    use crate::i18n::translate;
    use std::collections::BTreeSet;
    use std::path::{Path, PathBuf};

    #[test]
    fn ids_are_sorted_unique_and_well_formed() {
        for pair in TABLE.windows(2) {
            assert_eq!(
                cmp_id(pair[0].id, pair[1].id),
                Ordering::Less,
                "{} must come before {}",
                pair[0].id,
                pair[1].id
            );
        }
        for t in TABLE {
            let (main, sub) = t.id.split_once('.').unwrap_or((t.id, ""));
            assert!(main.len() == 5 && main.starts_with('T'), "{}", t.id);
            assert!(main[1..].bytes().all(|b| b.is_ascii_digit()), "{}", t.id);
            assert!(
                sub.is_empty() || (sub.len() == 3 && sub.bytes().all(|b| b.is_ascii_digit())),
                "{}",
                t.id
            );
            assert_eq!(technique(t.id), Some(t));
            assert_eq!(technique(&t.id.to_ascii_lowercase()), Some(t));
        }
    }

    #[test]
    fn names_and_tactics_are_complete() {
        let mut current = 0;
        for t in TABLE {
            for (lang, name) in [(Lang::En, t.en), (Lang::Ru, t.ru)] {
                assert!(!name.trim().is_empty(), "{} has no {lang:?} name", t.id);
                assert_eq!(name.trim(), name, "{}: spaces around the name", t.id);
                assert_eq!(t.name(lang), name);
            }
            if t.is_sub() {
                let parent = technique(t.parent_id())
                    .unwrap_or_else(|| panic!("{}: no technique {}", t.id, t.parent_id()));
                assert!(
                    t.own_tactics.is_empty(),
                    "{}: tactics are the technique's",
                    t.id
                );
                assert!(!parent.legacy || t.legacy, "{}: a retired technique", t.id);
            } else {
                assert!(!t.own_tactics.is_empty(), "{} has no tactic", t.id);
                if !t.legacy {
                    current += 1;
                }
            }
            for key in t.tactics() {
                assert!(translate(Lang::Ru, key).is_some(), "{}: {key}", t.id);
                assert!(
                    t.legacy || TACTICS.contains(key),
                    "{}: {key} is not a tactic of the matrix",
                    t.id
                );
            }
        }
        // every technique of ATT&CK v19 Enterprise
        assert_eq!(current, 222);
        for key in TACTICS {
            assert!(matrix_column(key).count() > 0, "{key} has no technique");
        }
        println!("{} entries, {current} current techniques", TABLE.len());
    }

    #[test]
    fn lookups_and_sub_technique_fallback() {
        assert_eq!(technique_name("T1003.001", Lang::En), Some("LSASS Memory"));
        assert_eq!(technique_name("t1003.001", Lang::Ru), Some("Память LSASS"));
        assert_eq!(
            technique_name("attack.T1003", Lang::Ru),
            Some("Дамп учётных данных ОС")
        );
        assert_eq!(
            technique_name("T1053.005", Lang::Ru),
            Some("Планировщик заданий")
        );
        assert_eq!(technique_name("T1059.001", Lang::Ru), Some("PowerShell"));
        // a sub-technique without an entry of its own: its technique's name and tactics
        assert_eq!(technique("T1059.999"), None);
        assert_eq!(
            technique_name("T1059.999", Lang::En),
            Some("Command and Scripting Interpreter")
        );
        assert_eq!(
            technique_name("T1003.099", Lang::Ru),
            Some("Дамп учётных данных ОС")
        );
        assert_eq!(technique_tactics("T1059.999"), &[EXECUTION]);
        assert_eq!(technique_tactics("T1003.001"), &[CREDENTIALS]);
        assert_eq!(
            technique_tactics("T1053.005"),
            &[EXECUTION, PERSISTENCE, PRIVILEGE]
        );
        assert_eq!(technique_tactics("T1685.005"), &[IMPAIR]);
        assert_eq!(technique_tactics("T1562.001"), &[EVASION]);
        assert!(technique("T1562.001").is_some_and(|t| t.legacy));
        // unknown ids
        for id in ["T9999", "T9999.001", "", "T10", "attack.execution", "1003"] {
            assert_eq!(technique_name(id, Lang::En), None, "{id}");
            assert!(technique_tactics(id).is_empty(), "{id}");
        }
        assert!(matrix_column(IMPAIR).any(|t| t.id == "T1685"));
        assert!(matrix_column(EVASION).next().is_none());
        assert!(!matrix_column(STEALTH).any(|t| t.legacy || t.is_sub()));
    }

    /// `../shared` beside the repository, or `$DOZOR_SHARED_DIR`.
    fn shared_dir() -> PathBuf {
        std::env::var_os("DOZOR_SHARED_DIR")
            .map(PathBuf::from)
            .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared"))
    }

    fn rule_files(dir: &Path, out: &mut Vec<PathBuf>) {
        let Ok(entries) = std::fs::read_dir(dir) else {
            return;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            if path.is_dir() {
                rule_files(&path, out);
            } else if path.extension().is_some_and(|e| e == "yml" || e == "yaml") {
                out.push(path);
            }
        }
    }

    /// Every `attack.tNNNN` / `attack.tNNNN.NNN` in a text, upper-cased.
    fn technique_tags(text: &str, out: &mut BTreeSet<String>) {
        let lower = text.to_ascii_lowercase();
        for (i, _) in lower.match_indices("attack.t") {
            let rest = &lower.as_bytes()[i + 8..];
            let digits = |s: &[u8], n: usize| s.len() >= n && s[..n].iter().all(u8::is_ascii_digit);
            if !digits(rest, 4) {
                continue;
            }
            let mut len = 4;
            if rest.get(4) == Some(&b'.') && digits(&rest[5..], 3) {
                len = 8;
            }
            if rest.get(len).is_some_and(u8::is_ascii_alphanumeric) {
                continue;
            }
            let id = std::str::from_utf8(&rest[..len]).unwrap_or_default();
            out.insert(format!("T{id}"));
        }
    }

    #[test]
    fn covers_every_technique_of_the_shared_sigma_rules() {
        let sigma = shared_dir().join("sigma");
        if !sigma.join("rules").is_dir() {
            println!("skipped: {} not found", sigma.join("rules").display());
            return;
        }
        // `rules` and its siblings (`rules-emerging-threats`, `rules-threat-hunting`, ...)
        let mut files = Vec::new();
        for entry in std::fs::read_dir(&sigma).unwrap().flatten() {
            if entry.file_name().to_string_lossy().starts_with("rules") {
                rule_files(&entry.path(), &mut files);
            }
        }
        let mut ids = BTreeSet::new();
        for f in &files {
            if let Ok(text) = std::fs::read_to_string(f) {
                technique_tags(&text, &mut ids);
            }
        }
        assert!(ids.len() > 100, "only {} technique ids found", ids.len());
        let missing: Vec<&String> = ids.iter().filter(|id| technique(id).is_none()).collect();
        assert!(
            missing.is_empty(),
            "technique ids of the Sigma rules missing from the table: {missing:?}"
        );
        println!(
            "{} technique ids in {} rule files, all in the table",
            ids.len(),
            files.len()
        );
    }

    #[test]
    fn tag_scanner() {
        let mut ids = BTreeSet::new();
        technique_tags(
            "tags:\n  - attack.t1059.001\n  - ATTACK.T1003\n  - attack.t10\n  - attack.t12345\n  - attack.execution",
            &mut ids,
        );
        assert_eq!(ids.into_iter().collect::<Vec<_>>(), ["T1003", "T1059.001"]);
    }
}
